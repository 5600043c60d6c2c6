/**
 * The supervisor pipeline on a Redis Cluster (REDIS_URL `redis+cluster://…`, docs/deploy.md "Redis Cluster"):
 * POST /v1/events → inbox → `supervisor-events` (its own hash tag) → supervisor-worker → decision in Postgres,
 * and `Prefer: wait` answered from the decision stream read through the cluster.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decisionStreamKey } from '@warden/queue';
import { call, event, startTestApi, type TestApi } from '../support/api.js';
import { startRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';
import {
  decisionsOf,
  startTestSupervisor,
  waitForInboxStatus,
  type TestSupervisor,
} from '../support/supervisor.js';

// A file of its own cluster, so a fixed prefix: the slots of its keys, and so the nodes, are known.
const PREFIX = 'warden';
const TENANT = 'cluster-acme';

describe('supervisor pipeline on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  let api: TestApi;
  let supervisor: TestSupervisor;
  let key: string;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    api = await startTestApi({ REDIS_URL: cluster.url, QUEUE_PREFIX: PREFIX });
    supervisor = await startTestSupervisor({
      databaseUrl: api.database.url,
      prefix: PREFIX,
      redisUrl: cluster.url,
    });
    key = await api.createKey(TENANT, ['events:write', 'tasks:read']);
  });
  afterAll(async () => {
    await supervisor?.stop();
    await api?.stop();
    await cluster?.stop();
  });

  it('should decide an event posted through the API and write exactly one decision', async () => {
    const body = event('cluster-block', {
      task_id: 'task-block',
      payload: {
        agent_spec: { name: 'installer', capabilities: ['shell'] },
        command_spec: { name: 'install', command: 'sudo', args: ['apt-get', 'install', 'jq'] },
      },
    });
    const res = await call(`${api.url}/v1/events`, { key, body: { events: [body] } });
    expect(res.status).toBe(202);
    await waitForInboxStatus(api.db, TENANT, [body.event_id], 'completed');
    const decisions = await decisionsOf(api.db, TENANT, body.event_id);
    expect(decisions).toHaveLength(1);
    expect(decisions[0]).toMatchObject({ task_id: 'task-block', decision_type: 'BLOCK' });
  });

  it('should answer Prefer: wait with the decision read from the stream on the cluster', async () => {
    const res = await call(`${api.url}/v1/events`, {
      key,
      headers: { prefer: 'wait=10' },
      body: event('cluster-wait', {
        task_id: 'task-wait',
        payload: { agent_spec: { name: 'agent', capabilities: ['search'] } },
      }),
    });
    expect(res.status).toBe(200);
    expect(res.body.decisions).toHaveLength(1);
    expect(res.body.decisions[0]).toMatchObject({ task_id: 'task-wait', decision_type: 'ALLOW' });
  });

  it('should keep every key of supervisor-events under its own hash tag, on one node', async () => {
    const tag = `{${PREFIX}:supervisor-events}`;
    const byNode = await cluster.keysByNode(`${tag}:*`);
    const holders = [...byNode].filter(([, keys]) => keys.length > 0);
    expect(holders).toHaveLength(1);
    // The job of each event went through the queue (its job hash is there), not only through Postgres.
    expect(holders[0]![1]).toEqual(expect.arrayContaining([`${tag}:supervisor-events:id`]));
    // Untagged BullMQ keys (the standalone layout) would break on a cluster: there are none.
    const untagged = [...(await cluster.keysByNode(`${PREFIX}:supervisor-events:*`)).values()].flat();
    expect(untagged).toEqual([]);
  });

  it('should put the decision stream and the queue on different nodes (their slots differ)', async () => {
    const streamNodes = [...(await cluster.keysByNode(decisionStreamKey(PREFIX)))]
      .filter(([, keys]) => keys.length > 0)
      .map(([port]) => port);
    const queueNodes = [...(await cluster.keysByNode(`{${PREFIX}:supervisor-events}:*`))]
      .filter(([, keys]) => keys.length > 0)
      .map(([port]) => port);
    expect(streamNodes).toHaveLength(1);
    expect(queueNodes).toHaveLength(1);
    expect(new Set([...streamNodes, ...queueNodes]).size).toBe(2);
  });
});
