/**
 * Three scheduler replicas, each its own process as deployed (`node --import tsx services/scheduler/src/main.ts`),
 * on one database and one Redis, firing an every-second trigger for 30 s. Every fire must end as exactly one
 * execution row — none missing, none twice — and each run must call its handler exactly once, whichever
 * replica took the fire.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TriggerWorker } from '@warden/client';
import { updateTrigger } from '@warden/db';
import {
  createTestDatabase,
  deleteQueuePrefix,
  testQueuePrefix,
  testServers,
  type TestDatabase,
} from '@warden/testing';
import {
  executions,
  registerTestTrigger,
  sleep,
  spawnScheduler,
  startHandler,
  testQueues,
  waitUntil,
  type SchedulerProcess,
} from '../support/scheduler.js';

const TENANT = 'replicas-acme';
const RUN_MS = 30_000;

let database: TestDatabase;
let prefix: string;
let queues: ReturnType<typeof testQueues>;
let worker: TriggerWorker;
const replicas: SchedulerProcess[] = [];
/** Handler calls by execution id. */
const calls = new Map<string, number>();

beforeAll(async () => {
  database = await createTestDatabase();
  prefix = testQueuePrefix();
  queues = testQueues(prefix);
  worker = startHandler(
    prefix,
    TENANT,
    'replica-agent',
    async (ctx) => {
      calls.set(ctx.execution_id, (calls.get(ctx.execution_id) ?? 0) + 1);
      return { output: { second: ctx.scheduled_for } };
    },
    { concurrency: 8 },
  );
});

afterAll(async () => {
  await Promise.allSettled(replicas.map((r) => r.stop()));
  await worker?.close();
  await queues?.disconnect();
  await database?.drop();
  await deleteQueuePrefix(prefix);
});

describe('when three scheduler processes share one trigger', () => {
  it('should record exactly one execution per fire and call the handler once per run', async () => {
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: testServers.redisUrl,
      QUEUE_PREFIX: prefix,
      DB_POOL_SIZE: '5',
      FIRE_CONCURRENCY: '8',
    };
    for (let i = 0; i < 3; i++) replicas.push(spawnScheduler(env));
    await Promise.all(replicas.map((r) => r.ready));

    const trigger = await registerTestTrigger(database.db, queues, TENANT, {
      event_name: 'every-second',
      expression: '@every 1s',
      agent: { queue: 'replica-agent' },
    });
    await sleep(RUN_MS);
    await database.db.transaction().execute((trx) =>
      updateTrigger(trx, {
        tenantId: TENANT,
        eventName: 'every-second',
        patch: { enabled: false },
        actor: 'test',
      }),
    );
    await queues.enqueue('cron-fires', 'reconcile', { trigger_id: trigger.trigger_id });
    const rows = await waitUntil('every run to finish', async () => {
      const all = await executions(database.db, trigger.trigger_id);
      return all.every((r) => r.status !== 'pending' && r.status !== 'running') ? all : undefined;
    });
    await Promise.all(replicas.map((r) => r.stop()));

    // One row per second, from the first fire to the last: no gap, no second row.
    const seconds = rows.map((r) => r.scheduled_for.getTime());
    expect(rows.length).toBeGreaterThanOrEqual(25);
    expect(seconds.every((t) => t % 1000 === 0)).toBe(true);
    expect(new Set(seconds).size).toBe(rows.length);
    expect((seconds.at(-1)! - seconds[0]!) / 1000 + 1).toBe(rows.length);

    // Every fire ran (none should be late with three replicas idle) and each run called its handler once.
    const byStatus = rows.reduce<Record<string, number>>(
      (acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }),
      {},
    );
    expect(byStatus.success ?? 0).toBeGreaterThanOrEqual(rows.length - 2);
    for (const row of rows.filter((r) => r.status === 'success')) expect(calls.get(row.execution_id)).toBe(1);
    expect([...calls.values()].every((n) => n === 1)).toBe(true);

    // The replicas shared the work: each counts the runs it finished.
    const finishedBy = replicas.map(
      (r) =>
        r
          .output()
          .split('\n')
          .filter((line) => line.includes('"action":"finish"') && line.includes('every-second')).length,
    );
    expect(finishedBy.reduce((a, b) => a + b, 0)).toBe(byStatus.success ?? 0);
    expect(finishedBy.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
  }, 120_000);
});
