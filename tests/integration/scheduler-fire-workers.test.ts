/**
 * Fires are taken off `cron-fires` by several BullMQ workers side by side (FIRE_WORKERS, docs/scheduler.md,
 * "Configuration"): a burst is picked up sooner than one worker fetching a job at a time allows. Whichever worker
 * takes a fire, each fire still gets one ledger row and each run one handler call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { updateTrigger } from '@warden/db';
import { createTestDatabase, deleteQueuePrefix, testQueuePrefix, type TestDatabase } from '@warden/testing';
import {
  executions,
  registerTestTrigger,
  sleep,
  startHandler,
  startTestScheduler,
  testQueues,
  waitUntil,
  type TestScheduler,
} from '../support/scheduler.js';
import type { TriggerWorker } from '@warden/client';

const TENANT = 'fire-workers';
const TRIGGERS = 12;

let database: TestDatabase;
let prefix: string;
let scheduler: TestScheduler;
let queues: ReturnType<typeof testQueues>;
let handler: TriggerWorker;
const calls: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  prefix = testQueuePrefix();
  queues = testQueues(prefix);
  scheduler = await startTestScheduler({
    databaseUrl: database.url,
    prefix,
    env: { FIRE_WORKERS: '4', FIRE_CONCURRENCY: '16' },
  });
  handler = startHandler(
    prefix,
    TENANT,
    'agent',
    async (context) => {
      calls.push(context.execution_id);
      return { output: 'ok' };
    },
    { concurrency: 16 },
  );
});

afterAll(async () => {
  await handler?.close();
  await scheduler?.stop();
  await queues?.disconnect();
  await database?.drop();
  await deleteQueuePrefix(prefix);
});

describe('fires taken by several workers at once', () => {
  it('should have FIRE_WORKERS workers taking cron-fires', async () => {
    expect(await queues.get('cron-fires').getWorkersCount()).toBe(4);
  });

  it('should give every fire of triggers due together one row and every run one handler call', async () => {
    const names = Array.from({ length: TRIGGERS }, (_, i) => `together-${i}`);
    const triggers: Awaited<ReturnType<typeof registerTestTrigger>>[] = [];
    for (const name of names)
      triggers.push(
        await registerTestTrigger(database.db, queues, TENANT, {
          event_name: name,
          expression: '@every 1s',
          agent: { queue: 'agent' },
          fallback_strategy: 'never',
          overlap_policy: 'allow',
        }),
      );
    await sleep(3500);
    for (const [i, trigger] of triggers.entries()) {
      await database.db.transaction().execute((trx) =>
        updateTrigger(trx, {
          tenantId: TENANT,
          eventName: names[i]!,
          patch: { enabled: false },
          actor: 'test',
        }),
      );
      await queues.enqueue('cron-fires', 'reconcile', { trigger_id: trigger.trigger_id });
    }
    const rows = await waitUntil('every run to finish', async () => {
      const all = (await Promise.all(triggers.map((t) => executions(database.db, t.trigger_id)))).flat();
      return all.every((r) => r.status !== 'pending' && r.status !== 'running') ? all : undefined;
    });

    // Every trigger fired, each second once; each run called its handler exactly once.
    for (const trigger of triggers) {
      const own = rows.filter((r) => r.trigger_id === trigger.trigger_id);
      expect(own.length).toBeGreaterThanOrEqual(2);
      const seconds = own.map((r) => r.scheduled_for.getTime());
      expect(new Set(seconds).size).toBe(own.length);
    }
    const runs = rows.filter((r) => r.status === 'success');
    expect(runs.length).toBe(rows.filter((r) => r.status !== 'skipped').length);
    expect([...calls].sort()).toEqual(runs.map((r) => r.execution_id).sort());
  });
});
