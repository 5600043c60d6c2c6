/**
 * The circuit breaker (opens at the threshold, pauses the trigger, audits, sets the gauge; a half-open probe
 * closes it) and shadow migration (comparisons and consistency, audited weight changes gated on consistency,
 * red-line rollback with a report and a follow-up task), through the real scheduler.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TriggerWorker } from '@warden/client';
import { findTrigger, triggerStatus, updateTrigger } from '@warden/db';
import { ConflictError } from '@warden/domain';
import { createTestDatabase, deleteQueuePrefix, testQueuePrefix, type TestDatabase } from '@warden/testing';
import {
  registerTestTrigger,
  runNow,
  sleep,
  startHandler,
  startTestScheduler,
  testQueues,
  triggerAudits,
  waitForFinished,
  type TestScheduler,
} from '../support/scheduler.js';

const TENANT = 'breaker-acme';
const NEVER = '0 0 1 1 *';

let database: TestDatabase;
let prefix: string;
let scheduler: TestScheduler;
let queues: ReturnType<typeof testQueues>;
const workers: TriggerWorker[] = [];
const agentBehaviour = new Map<string, () => unknown>();
const fallbackBehaviour = new Map<string, () => unknown>();
const agentCalls: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  prefix = testQueuePrefix();
  queues = testQueues(prefix);
  scheduler = await startTestScheduler({ databaseUrl: database.url, prefix });
  workers.push(
    startHandler(prefix, TENANT, 'agent', async (ctx) => {
      agentCalls.push(ctx.event_name);
      return (agentBehaviour.get(ctx.event_name) ?? (() => ({ output: { by: 'agent' } })))();
    }),
    startHandler(prefix, TENANT, 'fallback', async (ctx) =>
      (fallbackBehaviour.get(ctx.event_name) ?? (() => ({ output: { by: 'fallback' } })))(),
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

const fail = (message: string) => () => Promise.reject(new Error(message));
const metrics = async () => (await fetch(`http://127.0.0.1:${scheduler.service.opsPort()}/metrics`)).text();
const health = async () =>
  (await fetch(`http://127.0.0.1:${scheduler.service.opsPort()}/health`)).json() as Promise<{
    level: string;
    reasons: string[];
  }>;

describe('circuit breaker', () => {
  it('should open at the threshold, pause the trigger with a note, audit and raise the gauge; a probe then closes it', async () => {
    agentBehaviour.set('brk', fail('model provider down'));
    const trigger = await registerTestTrigger(database.db, queues, TENANT, {
      event_name: 'brk',
      expression: NEVER,
      agent: { queue: 'agent' },
      circuit_breaker: { window: 3, min_runs: 3, failure_threshold: 0.5, reset_timeout_seconds: 2 },
    });

    for (let i = 0; i < 2; i++)
      expect((await waitForFinished(database.db, await runNow(database.db, queues, trigger))).status).toBe(
        'failed',
      );
    expect((await findTrigger(database.db, TENANT, 'brk'))!.breaker.state).toBe('closed');
    expect((await waitForFinished(database.db, await runNow(database.db, queues, trigger))).status).toBe(
      'failed',
    );

    const opened = (await findTrigger(database.db, TENANT, 'brk'))!;
    expect(opened.breaker.state).toBe('open');
    expect(opened).toMatchObject({ paused: true, pause_source: 'circuit_breaker' });
    expect(opened.pause_note).toMatch(/circuit breaker open: 3 of the last 3 runs failed/);
    expect((await triggerAudits(database.db, TENANT, 'brk')).map((a) => a.event_type)).toContain(
      'CIRCUIT_BREAKER_OPENED',
    );
    expect(await metrics()).toMatch(/cron_circuit_breaker_open\{[^}]*event_name="brk"[^}]*\} 1/);
    expect((await health()).level).toBe('degraded');

    // Open: the next fire is skipped without calling the agent.
    const callsBefore = agentCalls.filter((e) => e === 'brk').length;
    const skipped = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(skipped).toMatchObject({ status: 'skipped', skip_reason: 'circuit_open' });
    expect(agentCalls.filter((e) => e === 'brk').length).toBe(callsBefore);

    // After the reset timeout one probe runs; it succeeds, the breaker closes and the trigger resumes.
    await sleep(2100);
    agentBehaviour.set('brk', () => ({ output: 'recovered' }));
    const probe = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(probe).toMatchObject({ status: 'success', probe: true });
    const closed = (await findTrigger(database.db, TENANT, 'brk'))!;
    expect(closed.breaker.state).toBe('closed');
    expect(closed.paused).toBe(false);
    expect((await triggerAudits(database.db, TENANT, 'brk')).map((a) => a.event_type).slice(-2)).toEqual([
      'TRIGGER_RUN_REQUESTED',
      'CIRCUIT_BREAKER_CLOSED',
    ]);
    expect(await metrics()).toMatch(/cron_circuit_breaker_open\{[^}]*event_name="brk"[^}]*\} 0/);
    // The window restarted: one more failure does not reopen it.
    agentBehaviour.set('brk', fail('again'));
    expect((await waitForFinished(database.db, await runNow(database.db, queues, trigger))).status).toBe(
      'failed',
    );
    expect((await findTrigger(database.db, TENANT, 'brk'))!.breaker.state).toBe('closed');
  });

  it('should reopen when the probe fails', async () => {
    agentBehaviour.set('brk-reopen', fail('still down'));
    const trigger = await registerTestTrigger(database.db, queues, TENANT, {
      event_name: 'brk-reopen',
      expression: NEVER,
      agent: { queue: 'agent' },
      circuit_breaker: { window: 2, min_runs: 2, failure_threshold: 0.5, reset_timeout_seconds: 1 },
    });
    for (let i = 0; i < 2; i++)
      await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    const firstOpen = (await findTrigger(database.db, TENANT, 'brk-reopen'))!.breaker;
    expect(firstOpen.state).toBe('open');
    await sleep(1100);
    expect(await waitForFinished(database.db, await runNow(database.db, queues, trigger))).toMatchObject({
      status: 'failed',
      probe: true,
    });
    const reopened = (await findTrigger(database.db, TENANT, 'brk-reopen'))!;
    expect(reopened.breaker.state).toBe('open');
    expect(reopened.breaker.opened_at!.getTime()).toBeGreaterThan(firstOpen.opened_at!.getTime());
    expect(reopened.paused).toBe(true);
  });
});

describe('shadow migration', () => {
  it('should run both, serve the fallback, compare on the key fields, and gate raising the weight on consistency', async () => {
    agentBehaviour.set('shadow-ok', () => ({ output: { total: 10, note: 'agent wording' }, cost_usd: 0.01 }));
    fallbackBehaviour.set('shadow-ok', () => ({ output: { total: 10, note: 'legacy wording' } }));
    const trigger = await registerTestTrigger(database.db, queues, TENANT, {
      event_name: 'shadow-ok',
      expression: NEVER,
      agent: { queue: 'agent' },
      fallback: { queue: 'fallback' },
      mode: 'shadow',
      migration_weight: 0,
      migration: { compare_keys: ['total'], min_samples: 3, consistency_window: 5 },
    });
    const raise = () =>
      database.db.transaction().execute((trx) =>
        updateTrigger(trx, {
          tenantId: TENANT,
          eventName: 'shadow-ok',
          patch: { migration_weight: 0.5 },
          actor: 'test:carol',
        }),
      );
    await expect(raise()).rejects.toThrow(ConflictError);
    await expect(raise()).rejects.toThrow(/only 0 shadow comparison\(s\), 3 needed/);

    for (let i = 0; i < 3; i++) {
      const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
      expect(row).toMatchObject({
        status: 'fallback',
        decision_mode: 'shadow',
        agent_outcome: 'success',
        output: { total: 10, note: 'legacy wording' },
      });
      expect(row.comparison).toMatchObject({ equal: true, compared_keys: ['total'] });
    }
    const status = await triggerStatus(database.db, TENANT, 'shadow-ok');
    expect(status.migration.consistency).toEqual({ rate: 1, samples: 3, threshold: 0.99, window: 5 });

    const change = await raise();
    expect(change.trigger.definition.migration_weight).toBe(0.5);
    const audit = (await triggerAudits(database.db, TENANT, 'shadow-ok')).find(
      (a) => a.event_type === 'MIGRATION_WEIGHT_CHANGED',
    )!;
    expect(audit.payload).toMatchObject({
      by: 'test:carol',
      from: 0,
      to: 0.5,
      forced: false,
      consistency: { rate: 1, samples: 3 },
    });
  });

  it('should roll back after two consecutive agent failures, with an audit, a report and a follow-up task', async () => {
    agentBehaviour.set('shadow-rollback', fail('hallucinated a column'));
    const trigger = await registerTestTrigger(database.db, queues, TENANT, {
      event_name: 'shadow-rollback',
      expression: NEVER,
      agent: { queue: 'agent' },
      fallback: { queue: 'fallback' },
      mode: 'shadow',
      migration_weight: 0,
    });
    for (let i = 0; i < 2; i++) {
      const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
      expect(row).toMatchObject({
        status: 'fallback',
        decision_mode: 'shadow',
        agent_outcome: 'failed',
        output: { by: 'fallback' },
      });
    }
    const rolledBack = (await findTrigger(database.db, TENANT, 'shadow-rollback'))!;
    expect(rolledBack.definition).toMatchObject({ mode: 'live', migration_weight: 0 });

    const audit = (await triggerAudits(database.db, TENANT, 'shadow-rollback')).find(
      (a) => a.event_type === 'MIGRATION_ROLLED_BACK',
    )!;
    expect(audit.level).toBe('warn');
    expect(audit.payload).toMatchObject({
      red_line: 'consecutive_agent_failures',
      from: { mode: 'shadow', migration_weight: 0 },
      to: { mode: 'live', migration_weight: 0 },
    });

    const report = await database.db
      .selectFrom('cron_rollback_reports')
      .selectAll()
      .where('trigger_id', '=', trigger.trigger_id)
      .executeTakeFirstOrThrow();
    expect(report.report_id).toBe(audit.payload.report_id);
    expect(report.markdown).toMatch(/# Migration rolled back: shadow-rollback/);
    expect(report.markdown).toMatch(/the agent failed 2 times in a row/);
    expect(report.markdown).toMatch(/\| fallback \| shadow \| failed \|/);

    const task = await database.db
      .selectFrom('tasks')
      .selectAll()
      .where('tenant_id', '=', TENANT)
      .where('task_id', '=', report.follow_up_task_id)
      .executeTakeFirstOrThrow();
    expect(task.status).toBe('ready');
    expect(task.metadata).toMatchObject({
      kind: 'follow_up',
      source: 'scheduler',
      trigger: 'shadow-rollback',
      red_line: 'consecutive_agent_failures',
      report_id: report.report_id,
    });
    const taskAudits = await database.db
      .selectFrom('task_audits')
      .select('event_type')
      .where('task_id', '=', report.follow_up_task_id)
      .execute();
    expect(taskAudits.map((a) => a.event_type)).toEqual(['FOLLOW_UP_CREATED']);

    const status = await triggerStatus(database.db, TENANT, 'shadow-rollback');
    expect(status.migration.last_rollback).toMatchObject({
      report_id: report.report_id,
      red_line: 'consecutive_agent_failures',
      follow_up_task_id: report.follow_up_task_id,
    });

    // Rolled back: the agent no longer runs.
    const callsBefore = agentCalls.filter((e) => e === 'shadow-rollback').length;
    expect(await waitForFinished(database.db, await runNow(database.db, queues, trigger))).toMatchObject({
      status: 'fallback',
      decision_mode: 'fallback',
    });
    expect(agentCalls.filter((e) => e === 'shadow-rollback').length).toBe(callsBefore);
  });

  it('should roll back when consistency falls below the bar', async () => {
    agentBehaviour.set('shadow-drift', () => ({ output: { total: 11 } }));
    fallbackBehaviour.set('shadow-drift', () => ({ output: { total: 10 } }));
    const trigger = await registerTestTrigger(database.db, queues, TENANT, {
      event_name: 'shadow-drift',
      expression: NEVER,
      agent: { queue: 'agent' },
      fallback: { queue: 'fallback' },
      mode: 'shadow',
      migration: { compare_keys: ['total'], min_samples: 3, consistency_window: 5 },
    });
    for (let i = 0; i < 3; i++)
      expect(
        (await waitForFinished(database.db, await runNow(database.db, queues, trigger))).comparison,
      ).toMatchObject({ equal: false });
    const report = await database.db
      .selectFrom('cron_rollback_reports')
      .selectAll()
      .where('trigger_id', '=', trigger.trigger_id)
      .executeTakeFirstOrThrow();
    expect(report.red_line).toBe('consistency_below_threshold');
    expect(report.markdown).toMatch(/`total`: agent 11 ≠ fallback 10/);
    expect((await findTrigger(database.db, TENANT, 'shadow-drift'))!.definition.mode).toBe('live');
  });
});
