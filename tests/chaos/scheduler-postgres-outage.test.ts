/**
 * One ledger row per scheduled fire, even across a Postgres outage longer than a fire job's retries
 * (docs/scheduler.md, "When Postgres is away"): a fire that cannot be recorded while Postgres is down waits for
 * it — without using its attempts — and is governed when it returns: run if it is still inside the trigger's
 * catch-up window, `skipped_missed` otherwise. Before, the job failed for good after ~15 s of retries and the
 * fire left no trace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TriggerWorker } from '@warden/client';
import { createDb, type Db } from '@warden/db';
import { deleteQueuePrefix, sleep, testQueuePrefix } from '@warden/testing';
import { ownPostgresServer, type OwnPostgres } from '../support/own-postgres.js';
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

const TENANT = 'outage-acme';
/** Longer than a fire job's five attempts (1 + 2 + 4 + 8 s of backoff), so a retry alone cannot carry a fire. */
const OUTAGE_MS = 20_000;

let postgres: OwnPostgres;
let db: Db;
let prefix: string;
let scheduler: TestScheduler;
let queues: ReturnType<typeof testQueues>;
let worker: TriggerWorker;

beforeAll(async () => {
  postgres = await ownPostgresServer();
  db = createDb({ url: postgres.url, maxConnections: 2 });
  prefix = testQueuePrefix();
  queues = testQueues(prefix);
  scheduler = await startTestScheduler({ databaseUrl: postgres.url, prefix, env: { DB_POOL_SIZE: '4' } });
  worker = startHandler(prefix, TENANT, 'agent', async () => ({ output: 'ok' }), { concurrency: 8 });
}, 60_000);

afterAll(async () => {
  await worker?.close();
  await scheduler?.stop();
  await queues?.disconnect();
  await db?.destroy();
  await postgres?.destroy();
  await deleteQueuePrefix(prefix);
});

describe('fires due while Postgres is down', () => {
  it('should each get exactly one ledger row when Postgres returns, per the catch-up window', async () => {
    const trigger = await registerTestTrigger(db, queues, TENANT, {
      event_name: 'through-outage',
      expression: '@every 1s',
      agent: { queue: 'agent' },
      fallback_strategy: 'never',
      overlap_policy: 'allow',
      cooldown_seconds: 0,
      catchup_window_seconds: 5,
    });
    await waitUntil('the trigger to fire', async () =>
      (await executions(db, trigger.trigger_id)).length >= 2 ? true : undefined,
    );

    const outageStart = Date.now();
    await postgres.stop();
    await sleep(OUTAGE_MS);
    await postgres.start();
    const outageEnd = Date.now();

    // Every fire due up to a few seconds after the outage is recorded (the waiting jobs retry every 2 s).
    const until = outageEnd + 3000;
    const rows = await waitUntil(
      'a row for every fire due during the outage',
      async () => {
        const all = await executions(db, trigger.trigger_id);
        const last = all.at(-1);
        return last && last.scheduled_for.getTime() >= until && all.every((r) => r.governed_at)
          ? all
          : undefined;
      },
      { timeoutMs: 40_000 },
    );
    await scheduler.stop();

    const first = rows[0]!.scheduled_for.getTime();
    const last = rows.at(-1)!.scheduled_for.getTime();
    const scheduledSeconds = rows.filter((r) => !r.manual).map((r) => r.scheduled_for.getTime());
    const missing: string[] = [];
    for (let at = first; at <= last; at += 1000)
      if (!scheduledSeconds.includes(at)) missing.push(new Date(at).toISOString());
    expect(missing, 'fires with no ledger row').toEqual([]);
    expect(await duplicateFires(db, trigger.trigger_id)).toEqual([]);

    // Governed by the catch-up window: fires due early in the outage were too late when it ended …
    const during = rows.filter(
      (r) => r.scheduled_for.getTime() > outageStart + 1000 && r.scheduled_for.getTime() < outageEnd - 8000,
    );
    expect(during.length).toBeGreaterThan(5);
    expect(new Set(during.map((r) => `${r.status}/${r.skip_reason}`))).toEqual(
      new Set(['skipped/skipped_missed']),
    );
    // … while fires due after it ran.
    const after = rows.filter((r) => r.scheduled_for.getTime() > outageEnd + 500);
    expect(after.some((r) => ['success', 'running', 'pending'].includes(r.status))).toBe(true);
  }, 120_000);
});
