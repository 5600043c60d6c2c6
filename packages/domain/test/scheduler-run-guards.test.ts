import { describe, expect, it } from 'vitest';
import {
  breakerAfterSkippedProbe,
  breakerGate,
  dailyCostStop,
  handlerCallEnd,
  probeDeadlineMs,
  startGate,
  type BreakerState,
} from '../src/index.js';

const NOW = new Date('2025-06-01T12:00:00Z');
const config = { failure_threshold: 0.5, window: 10, min_runs: 3, reset_timeout_seconds: 300 };

describe('the daily cost cap during a run', () => {
  const base = { cap_usd: 1, others_today_usd: 0.2, run_spent_usd: 0.3, reservation_usd: 0.4 };
  it('should let a run go on while spent plus its next reservation fit the cap', () => {
    expect(dailyCostStop(base)).toBeNull();
    expect(dailyCostStop({ ...base, cap_usd: null, run_spent_usd: 99 })).toBeNull();
  });
  it('should stop a run whose next calls would pass the cap, or that already passed it', () => {
    expect(dailyCostStop({ ...base, run_spent_usd: 0.5 })).toMatch(/stopped by the daily cost cap/);
    expect(dailyCostStop({ ...base, run_spent_usd: 0.8, reservation_usd: 0 })).toMatch(/cap/);
  });
});

describe('what a failed call costs', () => {
  const call = { started_at: NOW, deadline_at: new Date(NOW.getTime() + 1000) };
  it('should keep the cost a failure reports', () => {
    const end = handlerCallEnd(call, { ok: false, kind: 'handler', message: 'x', cost_usd: 0.7 }, NOW, 0.4);
    expect(end?.result).toEqual({ cost_usd: 0.7, cost_source: 'reported' });
  });
  it('should charge a failure or a timeout that reports none its reservation', () => {
    expect(handlerCallEnd(call, { ok: false, kind: 'handler', message: 'x' }, NOW, 0.4)?.result).toEqual({
      cost_usd: 0.4,
      cost_source: 'reservation',
    });
    const late = new Date(NOW.getTime() + 2000);
    expect(handlerCallEnd(call, { deadline: true }, late, 0.4)?.result).toMatchObject({ cost_usd: 0.4 });
    expect(handlerCallEnd(call, { ok: false, kind: 'handler', message: 'x' }, NOW)?.result).toBeUndefined();
  });
});

describe('the half-open probe', () => {
  const probing: BreakerState = {
    state: 'half_open',
    opened_at: new Date(NOW.getTime() - 3600_000),
    probe_execution_id: 'p-1',
    probe_started_at: new Date(NOW.getTime() - 60_000),
    reason: 'x',
  };
  it('should hold other fires back until its deadline, then let the next fire probe again', () => {
    const deadline = probeDeadlineMs({ max_duration_ms: 10_000, jitter_ms: 0 });
    expect(deadline).toBe(80_000);
    expect(breakerGate(probing, config, NOW, deadline)).toMatchObject({ allowed: false });
    const later = new Date(NOW.getTime() + 30_000);
    expect(breakerGate(probing, config, later, deadline)).toMatchObject({ allowed: true, probe: true });
  });
  it('should open again with a fresh timer when the probe ends skipped', () => {
    expect(
      breakerAfterSkippedProbe({ breaker: probing, execution_id: 'p-1', why: 'paused', now: NOW }),
    ).toMatchObject({
      state: 'open',
      opened_at: NOW,
      probe_execution_id: null,
    });
    expect(
      breakerAfterSkippedProbe({ breaker: probing, execution_id: 'other', why: 'x', now: NOW }),
    ).toBeNull();
  });
});

describe('governing a run again when it starts', () => {
  const ready = {
    enabled: true,
    paused: false,
    pause_source: null,
    pause_note: null,
    breaker_state: 'closed' as const,
    breaker_reason: null,
    max_daily_runs: 3,
    runs_today: 1,
    cost_stop: null,
  };
  it('should let it start when nothing changed', () => expect(startGate(ready)).toBeNull());
  it.each([
    [{ enabled: false }, 'disabled'],
    [{ paused: true, pause_source: 'manual' as const, pause_note: 'incident' }, 'paused'],
    [{ breaker_state: 'open' as const }, 'circuit_open'],
    [{ runs_today: 3 }, 'max_daily_runs'],
    [{ cost_stop: 'over' }, 'max_daily_cost'],
  ])('should skip it when the trigger changed while it waited (%#)', (change, reason) => {
    expect(startGate({ ...ready, ...change })?.skip_reason).toBe(reason);
  });
});
