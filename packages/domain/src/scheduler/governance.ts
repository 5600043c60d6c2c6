/**
 * Governance of one fire (docs/scheduler.md, "A fire, step by step", step 3): the checks in their fixed
 * order, each recorded with its reason, the first failure deciding the skip. A pure function of the trigger, its breaker, the fire, what the
 * ledger says and the clock; the scheduler runs it inside the transaction that locks the trigger, so two
 * fires of one trigger are governed one after the other. With no ledger data every check passes.
 */
import { breakerGate, type BreakerState } from './circuit-breaker.js';
import type { GovernanceCheck, GovernanceCheckName, SkipReason } from './execution.js';
import type { CircuitBreakerConfig, OverlapPolicy } from './trigger-definition.js';

export interface GovernedTrigger {
  enabled: boolean;
  paused: boolean;
  /** Who paused it: a person (`manual`) or the breaker (`circuit_breaker`, which the breaker check decides on). */
  pause_source: 'manual' | 'circuit_breaker' | null;
  pause_note: string | null;
  cooldown_seconds: number;
  max_daily_runs: number | null;
  max_daily_cost_usd: number | null;
  max_cost_per_run_usd: number | null;
  overlap_policy: OverlapPolicy;
  catchup_window_seconds: number;
  circuit_breaker: CircuitBreakerConfig;
  /** How long a half-open probe may decide (`probeDeadlineMs`). @defaultValue never expires */
  probe_deadline_ms?: number;
}

export interface GovernedFire {
  scheduled_for: Date;
  /** Trigger-now: never late, counts toward daily caps. */
  manual: boolean;
  /** A missed fire run on request when resuming: exempt from the catch-up window, and queued (not skipped) behind a run in flight. */
  backfill: boolean;
  /** A manual run that asked to run even while another is in flight. */
  override_overlap: boolean;
}

/** What the ledger knows, other than this fire. Days count in the trigger's zone. */
export interface LedgerSnapshot {
  /** Fire time of the latest run that ended `success` or `fallback`. */
  last_success_scheduled_for: Date | null;
  /** Runs (not skips, manual ones included) whose fire time falls on this fire's day. */
  runs_today: number;
  /** Cost of those runs plus what in-flight runs have reserved. */
  cost_today_usd: number;
  /** Runs pending or running now (a buffered one not counted). */
  in_flight: number;
  /** Runs waiting in the `buffer_one` slot. */
  buffered: number;
  /** Mean cost of recent finished runs, the estimate when no per-run cap is set. */
  average_cost_usd: number | null;
}

export interface GovernanceDecision {
  /** `run` now, `buffer` until the running one ends (`buffer_one`), or `skip`. */
  outcome: 'run' | 'buffer' | 'skip';
  checks: GovernanceCheck[];
  skip_reason: SkipReason | null;
  /** What to reserve against the daily cost cap until the run reports its cost. */
  reservation_usd: number;
  /** The run is the breaker's half-open probe. */
  probe: boolean;
}

const money = (value: number) => `$${value.toFixed(4).replace(/0+$/, '').replace(/\.$/, '')}`;

/** Runs the checks in order: enabled/paused → breaker → catch-up → cooldown → daily runs → daily cost → overlap. */
export function evaluateGovernance(input: {
  trigger: GovernedTrigger;
  breaker: BreakerState;
  fire: GovernedFire;
  ledger: LedgerSnapshot;
  now: Date;
}): GovernanceDecision {
  const { trigger, fire, ledger, now } = input;
  const checks: GovernanceCheck[] = [];
  const pass = (check: GovernanceCheckName, reason: string) => checks.push({ check, passed: true, reason });
  const skip = (check: GovernanceCheckName, skip_reason: SkipReason, reason: string): GovernanceDecision => {
    checks.push({ check, passed: false, reason });
    return { outcome: 'skip', checks, skip_reason, reservation_usd: 0, probe: false };
  };

  if (!trigger.enabled) return skip('enabled', 'disabled', 'the trigger is disabled');
  if (trigger.paused && trigger.pause_source !== 'circuit_breaker') {
    return skip('enabled', 'paused', `paused${trigger.pause_note ? `: ${trigger.pause_note}` : ''}`);
  }
  pass(
    'enabled',
    trigger.paused ? 'paused by the circuit breaker: the breaker check decides' : 'enabled and not paused',
  );

  const gate = breakerGate(input.breaker, trigger.circuit_breaker, now, trigger.probe_deadline_ms);
  if (!gate.allowed) return skip('circuit_breaker', 'circuit_open', gate.reason);
  pass('circuit_breaker', gate.reason);

  const lateMs = now.getTime() - fire.scheduled_for.getTime();
  if (fire.manual) pass('catchup_window', 'manual run');
  else if (fire.backfill)
    pass('catchup_window', `backfill requested on resume (${Math.round(lateMs / 1000)} s after its time)`);
  else if (lateMs > trigger.catchup_window_seconds * 1000) {
    return skip(
      'catchup_window',
      'skipped_missed',
      `fired ${(lateMs / 1000).toFixed(1)} s after its time, beyond the ${trigger.catchup_window_seconds} s catch-up window`,
    );
  } else
    pass(
      'catchup_window',
      `on time (${Math.max(0, lateMs)} ms late, window ${trigger.catchup_window_seconds} s)`,
    );

  if (trigger.cooldown_seconds > 0 && ledger.last_success_scheduled_for) {
    const sinceMs = fire.scheduled_for.getTime() - ledger.last_success_scheduled_for.getTime();
    if (sinceMs < trigger.cooldown_seconds * 1000) {
      return skip(
        'cooldown',
        'cooldown',
        `last successful run was ${Math.round(sinceMs / 1000)} s before this one; cooldown is ${trigger.cooldown_seconds} s`,
      );
    }
    pass(
      'cooldown',
      `${Math.round(sinceMs / 1000)} s since the last successful run (cooldown ${trigger.cooldown_seconds} s)`,
    );
  } else pass('cooldown', trigger.cooldown_seconds > 0 ? 'no successful run yet' : 'no cooldown');

  if (trigger.max_daily_runs !== null) {
    if (ledger.runs_today >= trigger.max_daily_runs) {
      return skip(
        'daily_runs',
        'max_daily_runs',
        `${ledger.runs_today} runs today already, the cap is ${trigger.max_daily_runs}`,
      );
    }
    pass('daily_runs', `${ledger.runs_today} of ${trigger.max_daily_runs} runs today`);
  } else pass('daily_runs', 'no daily run cap');

  // Reserve before the run, reconcile after: concurrent runs cannot overshoot the cap together.
  const reservation = trigger.max_cost_per_run_usd ?? ledger.average_cost_usd ?? 0;
  if (trigger.max_daily_cost_usd !== null) {
    const projected = ledger.cost_today_usd + reservation;
    if (ledger.cost_today_usd >= trigger.max_daily_cost_usd || projected > trigger.max_daily_cost_usd) {
      return skip(
        'daily_cost',
        'max_daily_cost',
        `${money(ledger.cost_today_usd)} spent or reserved today; with this run's estimate of ${money(reservation)} that would pass the ${money(trigger.max_daily_cost_usd)} cap`,
      );
    }
    pass(
      'daily_cost',
      `${money(ledger.cost_today_usd)} + ${money(reservation)} reserved of ${money(trigger.max_daily_cost_usd)} today`,
    );
  } else pass('daily_cost', 'no daily cost cap');

  const probe = gate.probe;
  let outcome: GovernanceDecision['outcome'] = 'run';
  if (ledger.in_flight === 0) pass('overlap', 'no run in flight');
  else if (fire.override_overlap && !probe)
    pass('overlap', `${ledger.in_flight} run(s) in flight; overridden by the manual run`);
  else if (probe)
    return skip(
      'overlap',
      'overlap',
      `${ledger.in_flight} run(s) in flight; the half-open probe must run alone`,
    );
  else if (trigger.overlap_policy === 'allow')
    pass('overlap', `${ledger.in_flight} run(s) in flight; policy allow`);
  else if (fire.backfill) {
    // Missed fires asked for on resume run one after another, whatever the policy: none is dropped.
    pass('overlap', `${ledger.in_flight} run(s) in flight; the backfill run waits its turn`);
    outcome = 'buffer';
  } else if (trigger.overlap_policy === 'buffer_one' && ledger.buffered === 0) {
    pass(
      'overlap',
      `${ledger.in_flight} run(s) in flight; buffered to start when it ends (policy buffer_one)`,
    );
    outcome = 'buffer';
  } else {
    return skip(
      'overlap',
      'overlap',
      trigger.overlap_policy === 'buffer_one'
        ? 'a run is in flight and another is already buffered (policy buffer_one)'
        : `${ledger.in_flight} run(s) in flight (policy skip)`,
    );
  }
  return { outcome, checks, skip_reason: null, reservation_usd: reservation, probe };
}
