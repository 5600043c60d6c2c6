/**
 * One ledger row per scheduled fire, always (docs/scheduler.md, "The ledger"): a manual run requested on the very
 * millisecond a scheduled fire is due never takes that fire's place, through the real scheduler and its BullMQ job
 * schedulers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestManualRun } from '@warden/db';
import { createTestDatabase, deleteQueuePrefix, testQueuePrefix, type TestDatabase } from '@warden/testing';
import {
  duplicateFires,
  executions,
  registerTestTrigger,
  startHandler,
  startTestScheduler,
  testQueues,
  waitUntil,
  type TestScheduler,
} from '../support/scheduler.js';
import type { TriggerWorker } from '@warden/client';

const TENANT = 'ledger-acme';

let database: TestDatabase;
let prefix: string;
let scheduler: TestScheduler;
let queues: ReturnType<typeof testQueues>;
const workers: TriggerWorker[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  prefix = testQueuePrefix();
  queues = testQueues(prefix);
  scheduler = await startTestScheduler({ databaseUrl: database.url, prefix });
  workers.push(startHandler(prefix, TENANT, 'agent', async () => ({ output: 'ok' }), { concurrency: 8 }));
});

afterAll(async () => {
  await Promise.allSettled(workers.map((w) => w.close()));
  await scheduler?.stop();
  await queues?.disconnect();
  await database?.drop();
  await deleteQueuePrefix(prefix);
});

describe('a manual run and a scheduled fire on the same millisecond', () => {
  it('should give each its own row: the scheduled fire still runs as scheduled', async () => {
    const trigger = await registerTestTrigger(database.db, queues, TENANT, {
      event_name: 'same-ms',
      expression: '@every 1s',
      agent: { queue: 'agent' },
      fallback_strategy: 'never',
      overlap_policy: 'allow',
      cooldown_seconds: 0,
    });
    // A whole second a little ahead: the job scheduler will fire then, and the manual request claims that very ms.
    const dueAt = new Date(Math.ceil((Date.now() + 1500) / 1000) * 1000);
    const manual = await database.db.transaction().execute((trx) =>
      requestManualRun(trx, {
        tenant_id: TENANT,
        trigger_id: trigger.trigger_id,
        event_name: 'same-ms',
        params: {},
        override_overlap: true,
        actor: 'test',
        now: dueAt,
      }),
    );
    await queues.enqueue(
      'cron-fires',
      'fire',
      {
        tenant_id: TENANT,
        trigger_id: trigger.trigger_id,
        scheduled_for: manual.scheduled_for.toISOString(),
      },
      { jobId: `manual-${manual.execution_id}` },
    );

    const rows = await waitUntil('the scheduled fire and the manual run to be recorded', async () => {
      const all = await executions(database.db, trigger.trigger_id);
      const scheduled = all.find((r) => !r.manual && r.scheduled_for.getTime() === dueAt.getTime());
      const byHand = all.find((r) => r.execution_id === manual.execution_id);
      return scheduled?.governed_at && byHand?.governed_at ? { scheduled, byHand } : undefined;
    });
    expect(manual.scheduled_for.getTime()).not.toBe(dueAt.getTime());
    expect(rows.byHand).toMatchObject({ manual: true });
    expect(rows.scheduled).toMatchObject({ manual: false });
    expect(await duplicateFires(database.db, trigger.trigger_id)).toEqual([]);
  });
});
