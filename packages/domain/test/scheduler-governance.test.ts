import { describe, expect, it } from 'vitest';
import {
  CLOSED_BREAKER,
  CircuitBreakerConfigSchema,
  breakerAfterRun,
  breakerGate,
  evaluateGovernance,
  nextExecutionStep,
  retryDelaySeconds,
  type AttemptSnapshot,
  type BreakerState,
  type GovernedFire,
  type GovernedTrigger,
  type LedgerSnapshot,
} from '../src/index.js';

const NOW = new Date('2025-06-01T12:00:00.050Z');
const breakerConfig = CircuitBreakerConfigSchema.parse({
  window: 4,
  min_runs: 4,
  failure_threshold: 0.5,
  reset_timeout_seconds: 60,
});

const trigger = (overrides: Partial<GovernedTrigger> = {}): GovernedTrigger => ({
  enabled: true,
  paused: false,
  pause_source: null,
  pause_note: null,
  cooldown_seconds: 0,
  max_daily_runs: null,
  max_daily_cost_usd: null,
  max_cost_per_run_usd: null,
  overlap_policy: 'skip',
  catchup_window_seconds: 60,
  circuit_breaker: breakerConfig,
  ...overrides,
});
const fire = (overrides: Partial<GovernedFire> = {}): GovernedFire => ({
  scheduled_for: new Date('2025-06-01T12:00:00Z'),
  manual: false,
  backfill: false,
  override_overlap: false,
  ...overrides,
});
const ledger = (overrides: Partial<LedgerSnapshot> = {}): LedgerSnapshot => ({
  last_success_scheduled_for: null,
  runs_today: 0,
  cost_today_usd: 0,
  in_flight: 0,
  buffered: 0,
  average_cost_usd: null,
  ...overrides,
});
const govern = (
  t: Partial<GovernedTrigger> = {},
  f: Partial<GovernedFire> = {},
  l: Partial<LedgerSnapshot> = {},
  breaker: BreakerState = CLOSED_BREAKER,
) => evaluateGovernance({ trigger: trigger(t), breaker, fire: fire(f), ledger: ledger(l), now: NOW });

describe('governance', () => {
  describe('when the ledger is empty', () => {
    it('should pass every check, in order, each with its reason', () => {
      const decision = govern();
      expect(decision.outcome).toBe('run');
      expect(decision.checks.map((c) => c.check)).toEqual([
        'enabled',
        'circuit_breaker',
        'catchup_window',
        'cooldown',
        'daily_runs',
        'daily_cost',
        'overlap',
      ]);
      expect(decision.checks.every((c) => c.passed && c.reason.length > 0)).toBe(true);
      expect(decision.skip_reason).toBeNull();
    });
  });

  describe('enabled / paused', () => {
    it('should skip a disabled trigger', () => {
      expect(govern({ enabled: false })).toMatchObject({ outcome: 'skip', skip_reason: 'disabled' });
    });
    it('should skip a paused trigger with its note', () => {
      const decision = govern({ paused: true, pause_source: 'manual', pause_note: 'db maintenance' });
      expect(decision).toMatchObject({ outcome: 'skip', skip_reason: 'paused' });
      expect(decision.checks.at(-1)!.reason).toBe('paused: db maintenance');
    });
    it('should leave a breaker pause to the breaker check', () => {
      const decision = govern(
        { paused: true, pause_source: 'circuit_breaker' },
        {},
        {},
        { state: 'open', opened_at: new Date(NOW.getTime() - 10_000), probe_execution_id: null, reason: 'x' },
      );
      expect(decision.checks.map((c) => [c.check, c.passed])).toEqual([
        ['enabled', true],
        ['circuit_breaker', false],
      ]);
      expect(decision.skip_reason).toBe('circuit_open');
    });
  });

  describe('circuit breaker', () => {
    const open = (ageMs: number): BreakerState => ({
      state: 'open',
      opened_at: new Date(NOW.getTime() - ageMs),
      probe_execution_id: null,
      reason: '4 of 4 failed',
    });
    it('should skip while open and before the reset timeout', () => {
      const decision = govern({}, {}, {}, open(10_000));
      expect(decision.skip_reason).toBe('circuit_open');
      expect(decision.checks.at(-1)!.reason).toMatch(/a probe may run in 50 s/);
    });
    it('should let one probe through after the reset timeout', () => {
      const decision = govern({}, {}, {}, open(60_000));
      expect(decision).toMatchObject({ outcome: 'run', probe: true });
    });
    it('should skip while a half-open probe is deciding', () => {
      expect(
        govern({}, {}, {}, { state: 'half_open', opened_at: NOW, probe_execution_id: 'p-1', reason: null })
          .skip_reason,
      ).toBe('circuit_open');
    });
    it('should make the probe run alone even when overlap is allowed', () => {
      const decision = govern({ overlap_policy: 'allow' }, {}, { in_flight: 1 }, open(120_000));
      expect(decision).toMatchObject({ outcome: 'skip', skip_reason: 'overlap' });
    });
  });

  describe('catch-up window', () => {
    it('should run a fire within the window', () => {
      expect(
        govern({ catchup_window_seconds: 1 }, { scheduled_for: new Date(NOW.getTime() - 900) }).outcome,
      ).toBe('run');
    });
    it('should skip a fire later than the window as skipped_missed', () => {
      const decision = govern(
        { catchup_window_seconds: 60 },
        { scheduled_for: new Date(NOW.getTime() - 61_000) },
      );
      expect(decision).toMatchObject({ outcome: 'skip', skip_reason: 'skipped_missed' });
      expect(decision.checks.at(-1)!.reason).toMatch(
        /61\.0 s after its time, beyond the 60 s catch-up window/,
      );
    });
    it('should never count a manual run or a requested backfill as late', () => {
      const old = new Date(NOW.getTime() - 3_600_000);
      expect(govern({}, { scheduled_for: old, manual: true }).outcome).toBe('run');
      expect(govern({}, { scheduled_for: old, backfill: true }).outcome).toBe('run');
    });
  });

  describe('cooldown', () => {
    it('should skip when the last success fired less than the cooldown before', () => {
      expect(
        govern(
          { cooldown_seconds: 300 },
          {},
          { last_success_scheduled_for: new Date('2025-06-01T11:58:00Z') },
        ),
      ).toMatchObject({ skip_reason: 'cooldown' });
    });
    it('should pass once the cooldown has passed', () => {
      expect(
        govern(
          { cooldown_seconds: 300 },
          {},
          { last_success_scheduled_for: new Date('2025-06-01T11:55:00Z') },
        ).outcome,
      ).toBe('run');
    });
  });

  describe('daily runs', () => {
    it('should skip at the cap', () => {
      expect(govern({ max_daily_runs: 3 }, {}, { runs_today: 3 })).toMatchObject({
        skip_reason: 'max_daily_runs',
      });
    });
    it('should pass below the cap', () => {
      expect(govern({ max_daily_runs: 3 }, {}, { runs_today: 2 }).outcome).toBe('run');
    });
  });

  describe('daily cost', () => {
    it('should reserve the per-run estimate and pass while it fits', () => {
      const decision = govern(
        { max_daily_cost_usd: 1, max_cost_per_run_usd: 0.25 },
        {},
        { cost_today_usd: 0.75 },
      );
      expect(decision).toMatchObject({ outcome: 'run', reservation_usd: 0.25 });
    });
    it('should skip when spent plus reserved plus the estimate would pass the cap', () => {
      expect(
        govern({ max_daily_cost_usd: 1, max_cost_per_run_usd: 0.25 }, {}, { cost_today_usd: 0.8 }),
      ).toMatchObject({ skip_reason: 'max_daily_cost' });
    });
    it('should estimate from recent runs when no per-run cap is set', () => {
      expect(
        govern({ max_daily_cost_usd: 1 }, {}, { cost_today_usd: 0.5, average_cost_usd: 0.6 }),
      ).toMatchObject({ skip_reason: 'max_daily_cost' });
      expect(
        govern({ max_daily_cost_usd: 1 }, {}, { cost_today_usd: 0.5, average_cost_usd: 0.4 }),
      ).toMatchObject({ outcome: 'run', reservation_usd: 0.4 });
    });
    it('should skip once the cap is spent even with no estimate', () => {
      expect(govern({ max_daily_cost_usd: 1 }, {}, { cost_today_usd: 1 })).toMatchObject({
        skip_reason: 'max_daily_cost',
      });
    });
  });

  describe('overlap', () => {
    it('should skip while a run is in flight (skip)', () => {
      expect(govern({ overlap_policy: 'skip' }, {}, { in_flight: 1 })).toMatchObject({
        skip_reason: 'overlap',
      });
    });
    it('should buffer one run, then skip the next (buffer_one)', () => {
      expect(govern({ overlap_policy: 'buffer_one' }, {}, { in_flight: 1 }).outcome).toBe('buffer');
      expect(govern({ overlap_policy: 'buffer_one' }, {}, { in_flight: 1, buffered: 1 })).toMatchObject({
        skip_reason: 'overlap',
      });
    });
    it('should run alongside (allow)', () => {
      expect(govern({ overlap_policy: 'allow' }, {}, { in_flight: 3 }).outcome).toBe('run');
    });
    it('should queue a requested backfill behind the run in flight instead of dropping it', () => {
      expect(
        govern(
          { overlap_policy: 'skip' },
          { backfill: true, scheduled_for: new Date(NOW.getTime() - 3_600_000) },
          { in_flight: 1, buffered: 3 },
        ).outcome,
      ).toBe('buffer');
    });
    it('should let a manual run override it', () => {
      expect(
        govern({ overlap_policy: 'skip' }, { manual: true, override_overlap: true }, { in_flight: 1 })
          .outcome,
      ).toBe('run');
    });
  });

  it('should stop at the first failing check', () => {
    const decision = govern(
      { paused: true, pause_source: 'manual', max_daily_runs: 1 },
      {},
      { runs_today: 5, in_flight: 2 },
    );
    expect(decision.checks).toHaveLength(1);
    expect(decision.skip_reason).toBe('paused');
  });
});

describe('circuit breaker state machine', () => {
  const run = (
    breaker: BreakerState,
    status: 'success' | 'failed' | 'fallback',
    recent: Array<'success' | 'failed' | 'fallback' | 'skipped'>,
    id = 'e-1',
  ) => breakerAfterRun({ config: breakerConfig, breaker, execution_id: id, status, recent, now: NOW });

  it('should open when the failure rate in the window is above the threshold with enough runs', () => {
    const verdict = run(CLOSED_BREAKER, 'failed', ['failed', 'failed', 'failed', 'success']);
    expect(verdict.transition).toBe('opened');
    expect(verdict.state).toMatchObject({ state: 'open', opened_at: NOW });
    expect(verdict.state.reason).toMatch(/3 of the last 4 runs failed/);
  });
  it('should stay closed at exactly the threshold', () => {
    expect(run(CLOSED_BREAKER, 'failed', ['failed', 'failed', 'success', 'success']).transition).toBeNull();
  });
  it('should stay closed below min_runs', () => {
    expect(run(CLOSED_BREAKER, 'failed', ['failed', 'failed', 'failed']).transition).toBeNull();
  });
  it('should count the fallback serving as success and leave skips out', () => {
    expect(
      run(CLOSED_BREAKER, 'failed', ['failed', 'fallback', 'skipped', 'fallback', 'failed']).transition,
    ).toBeNull();
  });
  it('should close when the half-open probe succeeds', () => {
    const verdict = run(
      { state: 'half_open', opened_at: NOW, probe_execution_id: 'probe', reason: 'x' },
      'success',
      ['success', 'failed', 'failed', 'failed'],
      'probe',
    );
    expect(verdict).toMatchObject({ transition: 'closed', state: CLOSED_BREAKER });
  });
  it('should open again when the probe fails', () => {
    const verdict = run(
      { state: 'half_open', opened_at: new Date(0), probe_execution_id: 'probe', reason: 'x' },
      'failed',
      ['failed'],
      'probe',
    );
    expect(verdict).toMatchObject({ transition: 'reopened', state: { state: 'open', opened_at: NOW } });
  });
  it('should ignore late runs while open', () => {
    expect(
      run({ state: 'open', opened_at: NOW, probe_execution_id: null, reason: 'x' }, 'failed', [
        'failed',
        'failed',
        'failed',
        'failed',
      ]).transition,
    ).toBeNull();
  });
  it('should allow nothing while open and before the reset timeout', () => {
    expect(
      breakerGate(
        {
          state: 'open',
          opened_at: new Date(NOW.getTime() - 59_000),
          probe_execution_id: null,
          reason: null,
        },
        breakerConfig,
        NOW,
      ),
    ).toMatchObject({ allowed: false, probe: false });
  });
});

describe('the execution state machine', () => {
  const attempt = (
    role: 'agent' | 'fallback',
    status: AttemptSnapshot['status'],
    error_kind: AttemptSnapshot['error_kind'] = null,
  ): AttemptSnapshot => ({ role, status, error_kind, error: status === 'success' ? null : 'boom' });
  const step = (input: Partial<Parameters<typeof nextExecutionStep>[0]>) =>
    nextExecutionStep({
      mode: 'agent',
      fallback_strategy: 'on_failure',
      has_fallback: true,
      attempts: [],
      retry: { retry_on_failure: false, max_retries: 3, retry_delay_seconds: 60 },
      retry_count: 0,
      probe: false,
      ...input,
    });

  it('should start the agent, then finish with success when it succeeds', () => {
    expect(step({})).toEqual({ kind: 'start', roles: ['agent'] });
    expect(step({ attempts: [attempt('agent', 'running')] })).toEqual({ kind: 'wait' });
    expect(step({ attempts: [attempt('agent', 'success')] })).toMatchObject({
      kind: 'finish',
      status: 'success',
      served_by: 'agent',
    });
  });

  describe('on_failure', () => {
    it('should run the fallback when the agent fails or times out, and finish as fallback', () => {
      expect(step({ attempts: [attempt('agent', 'failed')] })).toEqual({
        kind: 'start',
        roles: ['fallback'],
      });
      expect(step({ attempts: [attempt('agent', 'timeout', 'timeout')] })).toEqual({
        kind: 'start',
        roles: ['fallback'],
      });
      expect(step({ attempts: [attempt('agent', 'failed'), attempt('fallback', 'success')] })).toMatchObject({
        kind: 'finish',
        status: 'fallback',
        served_by: 'fallback',
      });
    });
    it('should fail when the fallback fails too, naming both', () => {
      const result = step({ attempts: [attempt('agent', 'failed'), attempt('fallback', 'failed')] });
      expect(result).toMatchObject({ kind: 'finish', status: 'failed' });
      expect((result as { error: string }).error).toMatch(/agent failed: boom; fallback failed: boom/);
    });
  });

  describe('never', () => {
    it('should not run the fallback', () => {
      expect(step({ fallback_strategy: 'never', attempts: [attempt('agent', 'failed')] })).toMatchObject({
        kind: 'finish',
        status: 'failed',
      });
    });
  });

  describe('always (the fallback path)', () => {
    it('should run only the fallback', () => {
      expect(step({ mode: 'fallback' })).toEqual({ kind: 'start', roles: ['fallback'] });
      expect(step({ mode: 'fallback', attempts: [attempt('fallback', 'success')] })).toMatchObject({
        kind: 'finish',
        status: 'fallback',
      });
    });
    it('should skip with no_fallback_handler when there is none', () => {
      expect(step({ mode: 'fallback', has_fallback: false })).toMatchObject({
        kind: 'finish',
        status: 'skipped',
        skip_reason: 'no_fallback_handler',
      });
    });
  });

  describe('shadow', () => {
    it('should start both and serve the fallback once both are done', () => {
      expect(step({ mode: 'shadow' })).toEqual({ kind: 'start', roles: ['agent', 'fallback'] });
      expect(
        step({ mode: 'shadow', attempts: [attempt('agent', 'success'), attempt('fallback', 'running')] }),
      ).toEqual({ kind: 'wait' });
      expect(
        step({ mode: 'shadow', attempts: [attempt('agent', 'failed'), attempt('fallback', 'success')] }),
      ).toMatchObject({ kind: 'finish', status: 'fallback', served_by: 'fallback' });
    });
  });

  describe('retries', () => {
    const retry = { retry_on_failure: true, max_retries: 2, retry_delay_seconds: 60 };
    it('should retry a failed run with exponential delays', () => {
      expect(
        step({ retry, fallback_strategy: 'never', attempts: [attempt('agent', 'failed')] }),
      ).toMatchObject({ kind: 'retry', delay_seconds: 60 });
      expect(
        step({ retry, fallback_strategy: 'never', attempts: [attempt('agent', 'failed')], retry_count: 1 }),
      ).toMatchObject({ kind: 'retry', delay_seconds: 120 });
    });
    it('should stop when retries are used up', () => {
      const result = step({
        retry,
        fallback_strategy: 'never',
        attempts: [attempt('agent', 'failed')],
        retry_count: 2,
      });
      expect(result).toMatchObject({ kind: 'finish', status: 'failed' });
      expect((result as { error: string }).error).toMatch(/after 2 retries/);
    });
    it('should never retry a validation error', () => {
      const result = step({
        retry,
        fallback_strategy: 'never',
        attempts: [attempt('agent', 'failed', 'validation')],
      });
      expect(result).toMatchObject({ kind: 'finish', status: 'failed' });
      expect((result as { error: string }).error).toMatch(/validation errors are not retried/);
    });
    it('should never retry the half-open probe', () => {
      expect(
        step({ retry, probe: true, fallback_strategy: 'never', attempts: [attempt('agent', 'failed')] }),
      ).toMatchObject({ kind: 'finish', status: 'failed' });
    });
    it('should cap the delay at one hour', () => {
      expect(retryDelaySeconds(60, 0)).toBe(60);
      expect(retryDelaySeconds(60, 3)).toBe(480);
      expect(retryDelaySeconds(600, 4)).toBe(3600);
    });
  });
});
