/**
 * Scheduler hardening (issue 11, items 3–5), through the real scheduler: the daily cost cap holds across failed
 * calls and retries, a half-open breaker cannot stick, and a run that waited after governance is governed
 * again when it starts.
 */
import { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TriggerRunFailedError, type TriggerWorker } from '@warden/client';
import { findTrigger, pauseTrigger, writeTriggerState } from '@warden/db';
import { HandlerJobSchema } from '@warden/domain';
import { createRedis, triggerHandlerQueueName } from '@warden/queue';
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
  runNow,
  startHandler,
  startTestScheduler,
  testQueues,
  waitForFinished,
  waitUntil,
  type TestScheduler,
} from '../support/scheduler.js';

const TENANT = 'harden-acme';
const NEVER = '0 0 1 1 *';

let database: TestDatabase;
let prefix: string;
let scheduler: TestScheduler;
let queues: ReturnType<typeof testQueues>;
const workers: TriggerWorker[] = [];
const closers: Array<() => Promise<void>> = [];
const agentBehaviour = new Map<string, () => unknown>();

beforeAll(async () => {
  database = await createTestDatabase();
  prefix = testQueuePrefix();
  queues = testQueues(prefix);
  scheduler = await startTestScheduler({ databaseUrl: database.url, prefix });
  workers.push(
    startHandler(prefix, TENANT, 'agent', async (ctx) =>
      (agentBehaviour.get(ctx.event_name) ?? (() => ({ output: { by: 'agent' } })))(),
    ),
  );
});

afterAll(async () => {
  await Promise.allSettled(workers.map((w) => w.close()));
  await Promise.allSettled(closers.map((close) => close()));
  await scheduler?.stop();
  await queues?.disconnect();
  await database?.drop();
  await deleteQueuePrefix(prefix);
});

const attemptsOf = (executionId: string) =>
  database.db
    .selectFrom('cron_execution_attempts')
    .selectAll()
    .where('execution_id', '=', executionId)
    .orderBy('try')
    .execute();

describe('the daily cost cap', () => {
  it('should charge a failure that reports no cost its reservation, and stop retrying at the cap', async () => {
    agentBehaviour.set('cost-unreported', () => Promise.reject(new Error('upstream 500 after 30 LLM calls')));
    const trigger = await registerTestTrigger(database.db, queues, TENANT, {
      event_name: 'cost-unreported',
      expression: NEVER,
      agent: { queue: 'agent' },
      max_daily_cost_usd: 1,
      max_cost_per_run_usd: 0.4,
      retry_on_failure: true,
      max_retries: 5,
      retry_delay_seconds: 1,
    });
    const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger), 30_000);
    expect(row.status).toBe('failed');
    expect(row.error).toMatch(/stopped by the daily cost cap/);
    // Two tries charged $0.40 each; a third would pass the $1 cap.
    expect((await attemptsOf(row.execution_id)).map((a) => a.try)).toEqual([0, 1]);
    expect(Number(row.cost_usd)).toBeCloseTo(0.8, 6);
    expect(Number(row.cost_usd)).toBeLessThanOrEqual(1);
  });

  it('should record the cost a failed call reports, and re-check the cap before a retry', async () => {
    // A handler worker outside the SDK that reports what its failed call spent.
    const connection = createRedis(testServers.redisUrl, 'worker');
    const worker = new Worker(
      triggerHandlerQueueName(TENANT, 'costly'),
      async (job) => {
        const { tenant_id, execution_id, attempt_id } = HandlerJobSchema.parse(job.data);
        await queues.enqueue('cron-results', 'result', {
          tenant_id,
          execution_id,
          attempt_id,
          ok: false,
          error: { kind: 'handler', message: 'gave up', cost_usd: 0.7, llm_calls: 12 },
        });
      },
      { connection, prefix },
    );
    closers.push(async () => {
      await worker.close();
      connection.disconnect();
    });
    const trigger = await registerTestTrigger(database.db, queues, TENANT, {
      event_name: 'cost-reported',
      expression: NEVER,
      agent: { queue: 'costly' },
      max_daily_cost_usd: 1,
      max_cost_per_run_usd: 0.4,
      retry_on_failure: true,
      max_retries: 3,
      retry_delay_seconds: 1,
    });
    const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger), 30_000);
    expect(row).toMatchObject({ status: 'failed', llm_calls: 12 });
    expect(Number(row.cost_usd)).toBeCloseTo(0.7, 6);
    expect(row.error).toMatch(/stopped by the daily cost cap/);
    expect(await attemptsOf(row.execution_id)).toHaveLength(1);
  });

  it('should charge what an SDK handler reports when it throws TriggerRunFailedError', async () => {
    const worker = startHandler(prefix, TENANT, 'sdk-costly', async () => {
      throw new TriggerRunFailedError('the model gave up', { cost_usd: 0.3, llm_calls: 5 });
    });
    closers.push(() => worker.close());
    const trigger = await registerTestTrigger(database.db, queues, TENANT, {
      event_name: 'sdk-cost-reported',
      expression: NEVER,
      agent: { queue: 'sdk-costly' },
      fallback_strategy: 'never',
      max_daily_cost_usd: 1,
      max_cost_per_run_usd: 0.1,
    });
    const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger), 30_000);
    // Not the 0.1 reservation: what the handler said it spent.
    expect(row).toMatchObject({ status: 'failed', llm_calls: 5 });
    expect(Number(row.cost_usd)).toBeCloseTo(0.3, 6);
    expect(row.error).toMatch(/the model gave up/);
  });
});

describe('the half-open breaker', () => {
  it('should open again with a fresh timer when its probe ends skipped', async () => {
    const trigger = await registerTestTrigger(database.db, queues, TENANT, {
      event_name: 'probe-skipped',
      expression: NEVER,
      agent: { queue: 'agent' },
    });
    // A probe that will be skipped when it starts: the trigger is disabled while it waits.
    const probeId = await runNow(database.db, queues, trigger);
    await waitForFinished(database.db, probeId);
    const openedAt = new Date(Date.now() - 3600_000);
    await database.db.transaction().execute(async (trx) => {
      await writeTriggerState(
        trx,
        trigger.trigger_id,
        {
          breaker: {
            state: 'half_open',
            opened_at: openedAt,
            probe_execution_id: probeId,
            probe_started_at: new Date(),
            reason: 'x',
          },
        },
        new Date(),
      );
      // Back to a governed probe waiting for its turn (as if buffered), with no call made yet.
      await trx.deleteFrom('cron_execution_attempts').where('execution_id', '=', probeId).execute();
      await trx
        .updateTable('cron_executions')
        .set({ status: 'pending', buffered: true, probe: true, started_at: null, completed_at: null })
        .where('execution_id', '=', probeId)
        .execute();
      await trx
        .updateTable('cron_triggers')
        .set({ enabled: false })
        .where('trigger_id', '=', trigger.trigger_id)
        .execute();
    });
    // The probe's turn comes (its buffered wake-up): disabled meanwhile, it ends skipped.
    await queues.enqueue('cron-fires', 'advance', { tenant_id: TENANT, execution_id: probeId });
    await waitUntil('the probe to end', async () => {
      const row = (await executions(database.db, trigger.trigger_id)).find((r) => r.execution_id === probeId);
      return row?.status === 'skipped' ? row : undefined;
    });
    const after = (await findTrigger(database.db, TENANT, 'probe-skipped'))!;
    expect(after.breaker.state).toBe('open');
    expect(after.breaker.opened_at!.getTime()).toBeGreaterThan(openedAt.getTime());
    expect(after.breaker.reason).toMatch(/ended skipped/);
  });

  it('should let the next fire probe again once a probe passed its deadline', async () => {
    const trigger = await registerTestTrigger(database.db, queues, TENANT, {
      event_name: 'probe-lost',
      expression: NEVER,
      agent: { queue: 'agent' },
      max_duration_ms: 1000,
    });
    await database.db.transaction().execute((trx) =>
      writeTriggerState(
        trx,
        trigger.trigger_id,
        {
          paused: true,
          pause_source: 'circuit_breaker',
          paused_at: new Date(),
          paused_by: 'scheduler',
          breaker: {
            state: 'half_open',
            opened_at: new Date(Date.now() - 3600_000),
            probe_execution_id: '00000000-0000-4000-8000-000000000000', // lost: never finishes
            probe_started_at: new Date(Date.now() - 10 * 60_000),
            reason: 'x',
          },
        },
        new Date(),
      ),
    );
    const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(row).toMatchObject({ status: 'success', probe: true });
    const after = (await findTrigger(database.db, TENANT, 'probe-lost'))!;
    expect(after.breaker.state).toBe('closed');
    expect(after.paused).toBe(false);
  });
});

describe('a run that waited', () => {
  it('should be governed again when its buffered turn comes', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    agentBehaviour.set('buffered-regoverned', async () => {
      await gate;
      return { output: { by: 'agent' } };
    });
    const trigger = await registerTestTrigger(database.db, queues, TENANT, {
      event_name: 'buffered-regoverned',
      expression: NEVER,
      agent: { queue: 'agent' },
      overlap_policy: 'buffer_one',
    });
    const first = await runNow(database.db, queues, trigger);
    await waitUntil('the first run to start', async () =>
      (await executions(database.db, trigger.trigger_id)).some(
        (r) => r.execution_id === first && r.status === 'running',
      ),
    );
    const second = await runNow(database.db, queues, trigger);
    await waitUntil('the second run to be buffered', async () =>
      (await executions(database.db, trigger.trigger_id)).some(
        (r) => r.execution_id === second && r.buffered && r.governed_at !== null,
      ),
    );
    await database.db.transaction().execute((trx) =>
      pauseTrigger(trx, {
        tenantId: TENANT,
        eventName: 'buffered-regoverned',
        actor: 'test',
        note: 'incident',
      }),
    );
    release();
    expect((await waitForFinished(database.db, first)).status).toBe('success');
    const waited = await waitForFinished(database.db, second);
    expect(waited).toMatchObject({ status: 'skipped', skip_reason: 'paused' });
    expect(waited.error).toMatch(/paused while it waited to start: incident/);
    expect(await attemptsOf(second)).toHaveLength(0);
  });
});
