import { describe, expect, it } from 'vitest';
import {
  CLOSED_BREAKER,
  TriggerDefinitionSchema,
  decideFire,
  hiddenFireTimes,
  scheduleOf,
  type FireToDecide,
  type FiringTrigger,
  type LedgerSnapshot,
  type TriggerDefinitionInput,
} from '../src/index.js';

const FIRE_TIME = new Date('2025-06-01T12:00:00Z');
const NOW = new Date('2025-06-01T12:00:00.020Z');

const trigger = (
  definition: Partial<TriggerDefinitionInput> = {},
  state: Partial<FiringTrigger> = {},
): FiringTrigger => ({
  trigger_id: '7b0c1f5e-0000-4000-8000-000000000001',
  definition: TriggerDefinitionSchema.parse({
    event_name: 'nightly-report',
    expression: '0 * * * *',
    agent: { queue: 'agent' },
    fallback: { queue: 'legacy' },
    ...definition,
  }),
  paused: false,
  pause_source: null,
  pause_note: null,
  breaker: CLOSED_BREAKER,
  ...state,
});
const fire = (overrides: Partial<FireToDecide> = {}): FireToDecide => ({
  execution_id: 'e-1',
  scheduled_for: FIRE_TIME,
  manual: false,
  backfill: false,
  override_overlap: false,
  retry_count: 0,
  ...overrides,
});
/** What the ledger says of a trigger that never ran. */
const EMPTY_LEDGER: LedgerSnapshot = {
  last_success_scheduled_for: null,
  runs_today: 0,
  cost_today_usd: 0,
  in_flight: 0,
  buffered: 0,
  average_cost_usd: null,
};
const ledger = (overrides: Partial<LedgerSnapshot> = {}): LedgerSnapshot => ({
  ...EMPTY_LEDGER,
  ...overrides,
});

describe('deciding a fire', () => {
  describe('when governance passes', () => {
    it('should start the run with the handler the weight picks, governed now', () => {
      const verdict = decideFire({ trigger: trigger(), fire: fire(), ledger: ledger(), now: NOW });
      expect(verdict.outcome).toBe('started');
      expect(verdict.roles).toEqual(['agent']);
      expect(verdict.decision).toMatchObject({
        execution_id: 'e-1',
        status: 'running',
        decision_mode: 'agent',
        started_at: NOW,
        governed_at: NOW,
        completed_at: null,
        skip_reason: null,
      });
      expect(verdict.decision.governance_checks).toHaveLength(7);
    });

    it('should start both handlers in shadow mode', () => {
      const verdict = decideFire({
        trigger: trigger({ mode: 'shadow' }),
        fire: fire(),
        ledger: ledger(),
        now: NOW,
      });
      expect(verdict).toMatchObject({ outcome: 'started', roles: ['agent', 'fallback'] });
      expect(verdict.decision.decision_mode).toBe('shadow');
    });

    it('should reserve the per-run cost cap against the daily cost cap', () => {
      const verdict = decideFire({
        trigger: trigger({ max_daily_cost_usd: 1, max_cost_per_run_usd: 0.25 }),
        fire: fire(),
        ledger: ledger(),
        now: NOW,
      });
      expect(verdict.decision.reserved_cost_usd).toBe(0.25);
    });
  });

  describe('when governance fails', () => {
    it('should end the row skipped with the failing check as its error', () => {
      const verdict = decideFire({
        trigger: trigger({}, { paused: true, pause_source: 'manual', pause_note: 'maintenance' }),
        fire: fire(),
        ledger: ledger(),
        now: NOW,
      });
      expect(verdict.outcome).toBe('skipped');
      expect(verdict.roles).toEqual([]);
      expect(verdict.why).toBe('paused: maintenance');
      expect(verdict.decision).toMatchObject({
        status: 'skipped',
        skip_reason: 'paused',
        error: 'paused: maintenance',
        completed_at: NOW,
        decision_mode: null,
        reserved_cost_usd: 0,
      });
    });
  });

  describe('when a run is in flight', () => {
    it('should buffer the fire under buffer_one, pending and governed', () => {
      const verdict = decideFire({
        trigger: trigger({ overlap_policy: 'buffer_one' }),
        fire: fire(),
        ledger: ledger({ in_flight: 1 }),
        now: NOW,
      });
      expect(verdict.outcome).toBe('buffered');
      expect(verdict.decision).toMatchObject({ status: 'pending', buffered: true, started_at: null });
    });
  });

  describe('jitter', () => {
    it('should delay a scheduled fire to its deterministic start, the same on every call', () => {
      const jittered = trigger({ jitter_ms: 60_000 });
      const first = decideFire({ trigger: jittered, fire: fire(), ledger: ledger(), now: NOW });
      const again = decideFire({ trigger: jittered, fire: fire(), ledger: ledger(), now: NOW });
      expect(first.outcome).toBe('delayed');
      expect(first.decision.status).toBe('pending');
      const startAt = first.decision.next_attempt_at!;
      expect(startAt.getTime()).toBeGreaterThan(NOW.getTime());
      expect(startAt.getTime()).toBeLessThan(FIRE_TIME.getTime() + 60_000);
      expect(again.decision.next_attempt_at).toEqual(startAt);
    });

    it('should start once the jittered start has come', () => {
      const jittered = trigger({ jitter_ms: 60_000 });
      const delayed = decideFire({ trigger: jittered, fire: fire(), ledger: ledger(), now: NOW });
      const due = delayed.decision.next_attempt_at!;
      expect(decideFire({ trigger: jittered, fire: fire(), ledger: ledger(), now: due }).outcome).toBe(
        'started',
      );
    });

    it('should never jitter a manual run or a backfill', () => {
      const jittered = trigger({ jitter_ms: 60_000 });
      expect(
        decideFire({ trigger: jittered, fire: fire({ manual: true }), ledger: ledger(), now: NOW }).outcome,
      ).toBe('started');
      expect(
        decideFire({ trigger: jittered, fire: fire({ backfill: true }), ledger: ledger(), now: NOW }).outcome,
      ).toBe('started');
    });
  });

  describe('when the fallback path has no handler', () => {
    it('should skip with no_fallback_handler and release the probe and reservation', () => {
      // Stored triggers always have a handler; a definition edited to none must still not start a run.
      const base = trigger();
      const fallbackPath = { ...base, definition: { ...base.definition, agent: null, fallback: null } };
      const verdict = decideFire({ trigger: fallbackPath, fire: fire(), ledger: ledger(), now: NOW });
      expect(verdict).toMatchObject({ outcome: 'skipped', why: 'no fallback handler' });
      expect(verdict.decision).toMatchObject({
        status: 'skipped',
        skip_reason: 'no_fallback_handler',
        decision_mode: 'fallback',
        probe: false,
        reserved_cost_usd: 0,
        completed_at: NOW,
      });
    });
  });

  describe('the half-open probe', () => {
    it('should mark the run as the probe once the reset timeout passed', () => {
      const open = trigger(
        { circuit_breaker: { reset_timeout_seconds: 60 } },
        {
          paused: true,
          pause_source: 'circuit_breaker',
          breaker: {
            state: 'open',
            opened_at: new Date(NOW.getTime() - 61_000),
            probe_execution_id: null,
            reason: 'x',
          },
        },
      );
      const verdict = decideFire({ trigger: open, fire: fire(), ledger: ledger(), now: NOW });
      expect(verdict.outcome).toBe('started');
      expect(verdict.decision.probe).toBe(true);
    });
  });
});

describe('fires a late job hid', () => {
  const every15s = scheduleOf('@every 15s', 'UTC');
  const hourly = scheduleOf('0 * * * *', 'UTC');

  it('should list the fire times between the late fire and when it was taken', () => {
    const hidden = hiddenFireTimes(every15s, FIRE_TIME, new Date(FIRE_TIME.getTime() + 50_000), 1000);
    expect(hidden.map((d) => d.toISOString())).toEqual([
      '2025-06-01T12:00:15.000Z',
      '2025-06-01T12:00:30.000Z',
      '2025-06-01T12:00:45.000Z',
    ]);
  });

  it('should find none when the fire was taken within the shortest gap between fires', () => {
    expect(hiddenFireTimes(every15s, FIRE_TIME, new Date(FIRE_TIME.getTime() + 14_999), 1000)).toEqual([]);
    // Cron has minute resolution: a minute is the shortest gap whatever the pattern.
    expect(hiddenFireTimes(hourly, FIRE_TIME, new Date(FIRE_TIME.getTime() + 59_999), 1000)).toEqual([]);
  });

  it('should stop at the limit', () => {
    expect(hiddenFireTimes(every15s, FIRE_TIME, new Date(FIRE_TIME.getTime() + 3_600_000), 10)).toHaveLength(
      10,
    );
  });
});
