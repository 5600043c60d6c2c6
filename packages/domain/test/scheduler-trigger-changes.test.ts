import { describe, expect, it } from 'vitest';
import {
  CLOSED_BREAKER,
  ConflictError,
  ScheduleError,
  TriggerDefinitionSchema,
  ValidationError,
  breakerTransition,
  changedDefinitionFields,
  consistencyOf,
  definitionChangeAudits,
  pauseByPerson,
  planRollback,
  resumeByPerson,
  triggerRegisteredAudit,
  triggerResumedAudit,
  validateTimeZone,
  type BreakerState,
  type TriggerDefinitionInput,
  type TriggerLiveState,
} from '../src/index.js';

const NOW = new Date('2025-06-01T12:00:00Z');
const definition = (input: Partial<TriggerDefinitionInput> = {}) =>
  TriggerDefinitionSchema.parse({
    event_name: 'nightly-report',
    expression: '0 2 * * *',
    agent: { queue: 'agent' },
    fallback: { queue: 'legacy' },
    migration_weight: 0,
    ...input,
  });
const live = (overrides: Partial<TriggerLiveState> = {}): TriggerLiveState => ({
  paused: false,
  pause_source: null,
  pause_note: null,
  paused_at: null,
  paused_by: null,
  breaker: CLOSED_BREAKER,
  breaker_reset_at: null,
  ...overrides,
});

describe('registering and changing a definition', () => {
  it('should audit a registration with the definition, HTTP header values left out', () => {
    const audit = triggerRegisteredAudit({
      definition: definition({
        agent: { url: 'https://a.test/run', timeoutMs: 1000, headers: { authorization: 's3cret' } },
      }),
      trigger_id: 't-1',
      actor: 'alice',
    });
    expect(audit).toMatchObject({
      task_id: 'trigger:nightly-report',
      event_type: 'TRIGGER_REGISTERED',
      level: 'info',
    });
    expect(JSON.stringify(audit.payload)).not.toContain('s3cret');
    expect((audit.payload.definition as { agent: { headers: string[] } }).agent.headers).toEqual([
      'authorization',
    ]);
  });

  it('should find no change in an identical definition, and name the fields that changed', () => {
    expect(changedDefinitionFields(definition(), definition())).toEqual([]);
    expect(changedDefinitionFields(definition(), definition({ description: 'x', tags: ['a'] }))).toEqual([
      'description',
      'tags',
    ]);
  });

  it('should audit a weight change, a mode change and the update, in that order', () => {
    const before = definition();
    const next = definition({ migration_weight: 0.5, mode: 'shadow' });
    const audits = definitionChangeAudits({
      before,
      next,
      changed_fields: changedDefinitionFields(before, next),
      actor: 'alice',
      force: false,
      consistency: consistencyOf(
        Array.from({ length: 20 }, () => true),
        20,
      ),
    });
    expect(audits.map((a) => [a.event_type, a.level])).toEqual([
      ['MIGRATION_WEIGHT_CHANGED', 'warn'],
      ['MIGRATION_MODE_CHANGED', 'info'],
      ['TRIGGER_UPDATED', 'info'],
    ]);
    expect(audits[0]!.payload).toMatchObject({ by: 'alice', from: 0, to: 0.5, forced: false });
    expect(audits[2]!.payload).toMatchObject({
      changed_fields: ['mode', 'migration_weight'],
      before: { migration_weight: 0, mode: 'live' },
      after: { migration_weight: 0.5, mode: 'shadow' },
    });
  });

  it('should refuse raising the weight without proven consistency (409), and allow it when forced', () => {
    const before = definition();
    const next = definition({ migration_weight: 0.5 });
    const change = { before, next, changed_fields: ['migration_weight'], actor: 'alice' };
    expect(() => definitionChangeAudits({ ...change, force: false })).toThrow(ConflictError);
    const forced = definitionChangeAudits({ ...change, force: true });
    expect(forced[0]!.payload).toMatchObject({ forced: true });
  });
});

describe('pausing and resuming', () => {
  it("should pause with a person's note, keeping when it was first paused", () => {
    const pausedAt = new Date(NOW.getTime() - 60_000);
    const { change, audit } = pauseByPerson(
      live({ paused: true, pause_source: 'circuit_breaker', paused_at: pausedAt }),
      {
        event_name: 'nightly-report',
        actor: 'alice',
        note: 'maintenance',
        now: NOW,
      },
    );
    expect(change).toEqual({
      paused: true,
      pause_source: 'manual',
      pause_note: 'maintenance',
      paused_at: pausedAt,
      paused_by: 'alice',
    });
    expect(audit).toMatchObject({
      event_type: 'TRIGGER_PAUSED',
      level: 'warn',
      payload: { previous_source: 'circuit_breaker' },
    });
  });

  it('should change nothing when a person paused it already', () => {
    expect(
      pauseByPerson(live({ paused: true, pause_source: 'manual' }), {
        event_name: 'x',
        actor: 'bob',
        now: NOW,
      }),
    ).toEqual({
      change: null,
      audit: null,
    });
  });

  it('should resume, closing an open breaker and restarting its window', () => {
    const open = live({
      paused: true,
      pause_source: 'circuit_breaker',
      paused_at: new Date(NOW.getTime() - 90_000),
      paused_by: 'scheduler',
      breaker: { state: 'open', opened_at: NOW, probe_execution_id: null, reason: 'x' },
    });
    // Back to a live trigger with a closed breaker whose window starts now.
    expect(resumeByPerson(open, NOW)).toEqual(live({ breaker_reset_at: NOW }));
    expect(resumeByPerson(live(), NOW)).toBeNull();
    const audit = triggerResumedAudit(open, {
      event_name: 'nightly-report',
      actor: 'alice',
      backfill: true,
      backfilled_runs: 3,
      now: NOW,
    });
    expect(audit.payload).toMatchObject({
      paused_by: 'scheduler',
      paused_source: 'circuit_breaker',
      paused_for_seconds: 90,
      backfilled_runs: 3,
      closed_breaker: true,
    });
  });
});

describe('breaker transitions', () => {
  const opened = {
    state: 'open' as const,
    opened_at: NOW,
    probe_execution_id: null,
    reason: '5 of 10 runs failed',
  };
  const move = (
    current: TriggerLiveState,
    transition: 'opened' | 'closed' | 'probing',
    next: BreakerState = opened,
  ) =>
    breakerTransition(current, {
      event_name: 'nightly-report',
      next,
      transition,
      failure_rate: 0.5,
      runs: 10,
      now: NOW,
    });

  it('should pause the trigger when the breaker opens, as an error on the trail', () => {
    const { change, audit } = move(live(), 'opened');
    expect(change).toMatchObject({
      breaker: opened,
      paused: true,
      pause_source: 'circuit_breaker',
      pause_note: 'circuit breaker open: 5 of 10 runs failed',
      paused_by: 'scheduler',
    });
    expect(audit).toMatchObject({
      event_type: 'CIRCUIT_BREAKER_OPENED',
      level: 'error',
      payload: { paused_trigger: true, window_runs: 10 },
    });
  });

  it("should leave a person's pause alone when the breaker opens", () => {
    const { change } = move(live({ paused: true, pause_source: 'manual' }), 'opened');
    expect(change).toEqual({ breaker: opened });
  });

  it('should resume a trigger the breaker paused when it closes, restarting the window', () => {
    const { change, audit } = move(
      live({ paused: true, pause_source: 'circuit_breaker' }),
      'closed',
      CLOSED_BREAKER,
    );
    expect(change).toMatchObject({
      breaker: CLOSED_BREAKER,
      breaker_reset_at: NOW,
      paused: false,
      pause_source: null,
    });
    expect(audit).toMatchObject({
      event_type: 'CIRCUIT_BREAKER_CLOSED',
      payload: { reason: 'half-open probe succeeded', resumed_trigger: true },
    });
  });

  it('should not audit the start of a probe', () => {
    const probing = { ...opened, state: 'half_open' as const, probe_execution_id: 'e-9' };
    expect(move(live(), 'probing', probing)).toEqual({ change: { breaker: probing }, audit: null });
  });
});

describe('rolling a migration back', () => {
  const plan = () =>
    planRollback({
      trigger_id: 't-1',
      event_name: 'nightly-report',
      red_line: 'consecutive_agent_failures',
      detail: 'the agent failed 2 times in a row',
      from: { migration_weight: 0.5, mode: 'live' },
      consistency: consistencyOf([], 20),
      last_runs: [],
      diff_samples: [],
      now: NOW,
    });

  it('should derive the same report and task ids for the same trigger and time', () => {
    expect(plan().report_id).toBe(plan().report_id);
    expect(plan().follow_up_task_id).toMatch(/^cron-rollback-nightly-report-[0-9a-f]{8}$/);
  });

  it('should set the weight to 0 and the mode to live, and open a follow-up task carrying the report', () => {
    const p = plan();
    expect(p.report.to).toEqual({ migration_weight: 0, mode: 'live' });
    expect(p.follow_up_metadata).toMatchObject({
      kind: 'follow_up',
      source: 'scheduler',
      report_id: p.report_id,
    });
    expect(p.audits.map((a) => [a.task_id, a.event_type])).toEqual([
      ['trigger:nightly-report', 'MIGRATION_ROLLED_BACK'],
      [p.follow_up_task_id, 'FOLLOW_UP_CREATED'],
    ]);
  });
});

describe('schedule errors', () => {
  it('should be validation errors naming the field (a 400, never retried)', () => {
    let caught: unknown;
    try {
      validateTimeZone('+02:00');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ScheduleError);
    expect(caught).toBeInstanceOf(ValidationError);
    const error = caught as ScheduleError;
    expect(error.name).toBe('ScheduleError');
    expect(error.field).toBe('timezone');
    expect(error.httpStatus).toBe(400);
    expect(error.retryable).toBe(false);
    expect(error.details).toEqual([{ path: 'timezone', message: error.message }]);
  });
});
