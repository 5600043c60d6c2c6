/**
 * Governance end to end (docs/scheduler.md: step 3), through the real scheduler, Postgres and Redis: each check passing
 * and failing, recorded in the ledger with its reason; pause/resume in the ledger and the audit trail;
 * trigger-now counting toward the daily cap; overlap skip vs buffer_one with a slow handler; and the
 * catch-up window after the scheduler was down.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TriggerWorker } from '@warden/client';
import { pauseTrigger, resumeTrigger, updateTrigger } from '@warden/db';
import { createTestDatabase, deleteQueuePrefix, testQueuePrefix, type TestDatabase } from '@warden/testing';
import {
  duplicateFires,
  executions,
  registerTestTrigger,
  runNow,
  sleep,
  startHandler,
  startTestScheduler,
  testQueues,
  triggerAudits,
  waitForFinished,
  waitUntil,
  type TestScheduler,
} from '../support/scheduler.js';

const TENANT = 'gov-acme';
/** Never fires during a test (1 January, midnight): runs come from trigger-now only. */
const NEVER = '0 0 1 1 *';

let database: TestDatabase;
let prefix: string;
let scheduler: TestScheduler;
let queues: ReturnType<typeof testQueues>;
const workers: TriggerWorker[] = [];
/** Handler calls wait on these when a test holds them. */
const gates = new Map<string, Promise<void>>();

function hold(eventName: string): () => void {
  let open!: () => void;
  gates.set(eventName, new Promise<void>((resolve) => (open = resolve)));
  return () => {
    gates.delete(eventName);
    open();
  };
}

beforeAll(async () => {
  database = await createTestDatabase();
  prefix = testQueuePrefix();
  queues = testQueues(prefix);
  scheduler = await startTestScheduler({ databaseUrl: database.url, prefix });
  workers.push(
    startHandler(
      prefix,
      TENANT,
      'gov-agent',
      async (ctx) => {
        await gates.get(ctx.event_name);
        return {
          agent_run_id: `run-${ctx.execution_id.slice(0, 8)}`,
          llm_calls: 1,
          cost_usd: 0.03,
          output: { params: ctx.params },
        };
      },
      { concurrency: 8 },
    ),
  );
});

afterAll(async () => {
  await Promise.allSettled(workers.map((w) => w.close()));
  await scheduler?.stop();
  await queues?.disconnect();
  await database?.drop();
  await deleteQueuePrefix(prefix);
});

const register = (event_name: string, extra: Record<string, unknown> = {}) =>
  registerTestTrigger(database.db, queues, TENANT, {
    event_name,
    expression: NEVER,
    agent: { queue: 'gov-agent' },
    ...extra,
  });

const checkOf = (row: { governance_checks: unknown[] }, check: string) =>
  (row.governance_checks as Array<{ check: string; passed: boolean; reason: string }>).find(
    (c) => c.check === check,
  );

describe('when no check fails', () => {
  it('should run, recording all seven checks as passed with their reasons', async () => {
    const trigger = await register('gov-pass');
    const row = await waitForFinished(
      database.db,
      await runNow(database.db, queues, trigger, { params: { region: 'eu' } }),
    );
    expect(row.status).toBe('success');
    expect(row.manual).toBe(true);
    expect(row.decision_mode).toBe('agent');
    expect(
      (row.governance_checks as Array<{ check: string; passed: boolean }>).map((c) => [c.check, c.passed]),
    ).toEqual([
      ['enabled', true],
      ['circuit_breaker', true],
      ['catchup_window', true],
      ['cooldown', true],
      ['daily_runs', true],
      ['daily_cost', true],
      ['overlap', true],
    ]);
    expect(row.agent_run_id).toMatch(/^run-/);
    expect(row.llm_calls).toBe(1);
    expect(Number(row.cost_usd)).toBe(0.03);
    expect(row.output).toEqual({ params: { region: 'eu' } });
    expect(row.started_at).not.toBeNull();
    expect(row.duration_ms).toBeGreaterThanOrEqual(0);
  });
});

describe('enabled / paused', () => {
  it('should skip while paused, record the pause and the resume, and run again after', async () => {
    const trigger = await register('gov-paused');
    await database.db.transaction().execute((trx) =>
      pauseTrigger(trx, {
        tenantId: TENANT,
        eventName: 'gov-paused',
        actor: 'test:alice',
        note: 'db maintenance',
      }),
    );
    const skipped = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(skipped).toMatchObject({ status: 'skipped', skip_reason: 'paused' });
    expect(checkOf(skipped, 'enabled')).toMatchObject({ passed: false, reason: 'paused: db maintenance' });

    await database.db.transaction().execute((trx) =>
      resumeTrigger(trx, {
        tenantId: TENANT,
        eventName: 'gov-paused',
        actor: 'test:bob',
        maxBackfill: 100,
      }),
    );
    expect((await waitForFinished(database.db, await runNow(database.db, queues, trigger))).status).toBe(
      'success',
    );

    const audits = await triggerAudits(database.db, TENANT, 'gov-paused');
    expect(audits.map((a) => a.event_type)).toEqual([
      'TRIGGER_REGISTERED',
      'TRIGGER_PAUSED',
      'TRIGGER_RUN_REQUESTED',
      'TRIGGER_RESUMED',
      'TRIGGER_RUN_REQUESTED',
    ]);
    expect(audits[1]!.payload).toMatchObject({ by: 'test:alice', note: 'db maintenance' });
    expect(audits[3]!.payload).toMatchObject({ by: 'test:bob', backfill: false });
  });

  it('should skip a disabled trigger', async () => {
    const trigger = await register('gov-disabled');
    await database.db.transaction().execute((trx) =>
      updateTrigger(trx, {
        tenantId: TENANT,
        eventName: 'gov-disabled',
        patch: { enabled: false },
        actor: 'test',
      }),
    );
    expect(await waitForFinished(database.db, await runNow(database.db, queues, trigger))).toMatchObject({
      status: 'skipped',
      skip_reason: 'disabled',
    });
  });
});

describe('cooldown', () => {
  it('should skip a run that comes within the cooldown of the last success', async () => {
    const trigger = await register('gov-cooldown', { cooldown_seconds: 3600 });
    expect((await waitForFinished(database.db, await runNow(database.db, queues, trigger))).status).toBe(
      'success',
    );
    const second = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(second).toMatchObject({ status: 'skipped', skip_reason: 'cooldown' });
    expect(checkOf(second, 'cooldown')!.reason).toMatch(/cooldown is 3600 s/);
  });
});

describe('daily runs', () => {
  it('should count trigger-now runs toward the cap and skip the run past it', async () => {
    const trigger = await register('gov-daily-runs', { max_daily_runs: 2 });
    for (let i = 0; i < 2; i++)
      expect((await waitForFinished(database.db, await runNow(database.db, queues, trigger))).status).toBe(
        'success',
      );
    const third = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(third).toMatchObject({ status: 'skipped', skip_reason: 'max_daily_runs' });
    expect(checkOf(third, 'daily_runs')!.reason).toBe('2 runs today already, the cap is 2');
  });
});

describe('daily cost', () => {
  it('should reserve before the run, reconcile after, and skip the run that would pass the cap', async () => {
    const trigger = await register('gov-daily-cost', {
      max_daily_cost_usd: 0.05,
      max_cost_per_run_usd: 0.03,
    });
    const release = hold('gov-daily-cost');
    const first = await runNow(database.db, queues, trigger);
    // While it runs, its estimate is reserved.
    const reserved = await waitUntil('the reservation', async () => {
      const rows = await executions(database.db, trigger.trigger_id);
      return rows.find((r) => r.execution_id === first && r.status === 'running');
    });
    expect(Number(reserved.reserved_cost_usd)).toBe(0.03);
    release();
    const done = await waitForFinished(database.db, first);
    expect(Number(done.cost_usd)).toBe(0.03);
    expect(Number(done.reserved_cost_usd)).toBe(0);
    const second = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(second).toMatchObject({ status: 'skipped', skip_reason: 'max_daily_cost' });
    expect(checkOf(second, 'daily_cost')!.reason).toMatch(/\$0\.03 spent or reserved today/);
  });
});

describe('overlap', () => {
  it('should skip a fire while a slow run is in flight (skip)', async () => {
    const trigger = await register('gov-overlap-skip');
    const release = hold('gov-overlap-skip');
    const first = await runNow(database.db, queues, trigger);
    await waitUntil('the first run to start', async () =>
      (await executions(database.db, trigger.trigger_id)).some((r) => r.status === 'running'),
    );
    const second = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(second).toMatchObject({ status: 'skipped', skip_reason: 'overlap' });
    // A manual run may override the policy.
    const forced = await runNow(database.db, queues, trigger, { overrideOverlap: true });
    release();
    expect((await waitForFinished(database.db, first)).status).toBe('success');
    expect((await waitForFinished(database.db, forced)).status).toBe('success');
  });

  it('should buffer one fire and start it when the slow run ends, skipping any further one (buffer_one)', async () => {
    const trigger = await register('gov-overlap-buffer', { overlap_policy: 'buffer_one' });
    const release = hold('gov-overlap-buffer');
    const first = await runNow(database.db, queues, trigger);
    await waitUntil('the first run to start', async () =>
      (await executions(database.db, trigger.trigger_id)).some((r) => r.status === 'running'),
    );
    const buffered = await runNow(database.db, queues, trigger);
    await waitUntil('the second run to be buffered', async () =>
      (await executions(database.db, trigger.trigger_id)).find(
        (r) => r.execution_id === buffered && r.buffered && r.governed_at,
      ),
    );
    const third = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(third).toMatchObject({ status: 'skipped', skip_reason: 'overlap' });
    expect(checkOf(third, 'overlap')!.reason).toMatch(/already buffered/);
    release();
    const firstDone = await waitForFinished(database.db, first);
    const bufferedDone = await waitForFinished(database.db, buffered);
    expect(bufferedDone.status).toBe('success');
    // The buffered run started only once the first had finished.
    expect(bufferedDone.started_at!.getTime()).toBeGreaterThanOrEqual(firstDone.completed_at!.getTime());
  });
});

describe('catch-up window', () => {
  it('should record fires later than the window as skipped_missed after the scheduler was down, and go on firing', async () => {
    const trigger = await register('gov-catchup', { expression: '@every 1s', catchup_window_seconds: 1 });
    await waitUntil(
      'a scheduled run',
      async () =>
        (await executions(database.db, trigger.trigger_id)).some((r) => r.status === 'success' && !r.manual),
      { timeoutMs: 15_000 },
    );
    await scheduler.stop();
    const downAt = Date.now();
    await sleep(3500);
    scheduler = await startTestScheduler({ databaseUrl: database.url, prefix });
    const rows = await waitUntil(
      'a run after the restart',
      async () => {
        const all = await executions(database.db, trigger.trigger_id);
        return all.some((r) => r.status === 'success' && r.scheduled_for.getTime() > downAt + 3000)
          ? all
          : undefined;
      },
      { timeoutMs: 20_000 },
    );
    const missed = rows.filter((r) => r.skip_reason === 'skipped_missed');
    expect(missed.length).toBeGreaterThanOrEqual(2);
    expect(missed.every((r) => r.status === 'skipped' && r.scheduled_for.getTime() >= downAt - 1000)).toBe(
      true,
    );
    expect(
      missed.some((r) => /beyond the 1 s catch-up window/.test(checkOf(r, 'catchup_window')?.reason ?? '')),
    ).toBe(true);
    expect(await duplicateFires(database.db, trigger.trigger_id)).toEqual([]);
    await database.db.transaction().execute((trx) =>
      updateTrigger(trx, {
        tenantId: TENANT,
        eventName: 'gov-catchup',
        patch: { enabled: false },
        actor: 'test',
      }),
    );
    await queues.enqueue('cron-fires', 'reconcile', { trigger_id: trigger.trigger_id });
  });
});
