/**
 * A cron fire on a Redis Cluster (docs/deploy.md "Redis Cluster"): a trigger's job scheduler on `cron-fires`
 * fires, the scheduler puts the call on the tenant's handler queue, an SDK trigger worker (given the same
 * `redis+cluster://` URL) runs it and reports on `cron-results`, and the run is recorded in Postgres. Each of
 * the three queues has a hash tag of its own, and with this prefix the three tags fall on the three masters.
 * The scheduler takes its locks on three independent Redis servers (REDLOCK_URLS), not on the cluster.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTriggerWorker, type TriggerWorker } from '@warden/client';
import {
  WardenQueues,
  createRedis,
  createRedlock,
  openLockClients,
  triggerHandlerQueueName,
  type RedisConnection,
} from '@warden/queue';
import { createTestDatabase, type TestDatabase } from '@warden/testing';
import { startRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';
import {
  executions,
  registerTestTrigger,
  startTestScheduler,
  waitUntil,
  type TestScheduler,
} from '../support/scheduler.js';
import { ownRedisServer, type OwnRedis } from '../support/supervisor.js';

const PREFIX = 'warden';
const TENANT = 'acme';
const HANDLER_QUEUE = 'agent';

describe('cron fires on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  let lockServers: OwnRedis[] = [];
  let database: TestDatabase;
  let connection: RedisConnection;
  let queues: WardenQueues;
  let scheduler: TestScheduler;
  let worker: TriggerWorker;
  const handled: string[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster();
    lockServers = await Promise.all([ownRedisServer(), ownRedisServer(), ownRedisServer()]);
    await Promise.all(lockServers.map((server) => server.start()));
    database = await createTestDatabase();
    connection = createRedis(cluster.url, 'general');
    queues = new WardenQueues({ connection, prefix: PREFIX });
    scheduler = await startTestScheduler({
      databaseUrl: database.url,
      prefix: PREFIX,
      env: {
        REDIS_URL: cluster.url,
        REDLOCK_URLS: lockServers.map((server) => server.url).join(','),
      },
    });
    worker = createTriggerWorker(
      HANDLER_QUEUE,
      async (ctx) => {
        handled.push(ctx.event_name);
        return { output: { on: 'cluster' } };
      },
      { tenantId: TENANT, connection: cluster.url, prefix: PREFIX },
    );
  });
  afterAll(async () => {
    await worker?.close();
    await scheduler?.stop();
    await queues?.close();
    connection?.disconnect();
    await database?.drop();
    await Promise.all(lockServers.map((server) => server.stop()));
    await cluster?.stop();
  });

  it('should fire a trigger from its job scheduler and record the handler result', async () => {
    const trigger = await registerTestTrigger(database.db, queues, TENANT, {
      event_name: 'cluster-tick',
      expression: '@every 1s',
      agent: { queue: HANDLER_QUEUE },
    });
    const run = await waitUntil('a scheduled run of cluster-tick to succeed', async () =>
      (await executions(database.db, trigger.trigger_id)).find((row) => row.status === 'success'),
    );
    // Fired by the job scheduler on `cron-fires`, not asked for by hand.
    expect(run).toMatchObject({ tenant_id: TENANT, trigger_id: trigger.trigger_id, manual: false });
    expect(run.output).toEqual({ on: 'cluster' });
    expect(handled).toContain('cluster-tick');
  });

  it('should spread the queues over the masters, each queue within one slot', async () => {
    const queueNames = ['cron-fires', 'cron-results', triggerHandlerQueueName(TENANT, HANDLER_QUEUE)];
    const nodeOf = new Map<string, number>();
    for (const name of queueNames) {
      const holders = [...(await cluster.keysByNode(`{${PREFIX}:${name}}:*`))].filter(
        ([, keys]) => keys.length > 0,
      );
      expect(holders, `nodes holding ${name}`).toHaveLength(1);
      nodeOf.set(name, holders[0]![0]);
    }
    expect(new Set(nodeOf.values()).size).toBe(3);
  });

  it('should take its locks on the REDLOCK_URLS servers, each of them', async () => {
    // The sweeper takes its lock every second; each server must have voted (run Redlock's script).
    for (const server of lockServers) {
      const client = createRedis(server.url, 'general');
      try {
        await waitUntil(`a lock script on ${server.url}`, async () =>
          /cmdstat_(evalsha|eval):calls=[1-9]/.test(await client.info('commandstats')),
        );
      } finally {
        client.disconnect();
      }
    }
  });

  it('should lock on the cluster itself when no REDLOCK_URLS are given: one key, on one master', async () => {
    const redlock = createRedlock(openLockClients([], () => connection).clients);
    const lock = await redlock.acquire([`${PREFIX}:lock:cluster-test`], 10_000);
    try {
      const holders = [...(await cluster.keysByNode(`${PREFIX}:lock:cluster-test`))].filter(
        ([, keys]) => keys.length > 0,
      );
      expect(holders).toHaveLength(1);
      const refused = await redlock.acquire([`${PREFIX}:lock:cluster-test`], 10_000).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(Error);
    } finally {
      await lock.release();
    }
  });
});
