/**
 * What becomes of one fire: governance, then the path (agent, fallback or both), the jitter and the first
 * step of the run. A pure function of the trigger, the fire's ledger row, what the ledger says and the clock;
 * the scheduler calls it inside the transaction that locks the trigger and writes the {@link FireDecision}
 * back.
 */
import type { DecisionMode, GovernanceCheck, HandlerRole, SkipReason } from './execution.js';
import { nextExecutionStep } from './execution-step.js';
import { probeDeadlineMs, type BreakerState } from './circuit-breaker.js';
import { evaluateGovernance, type LedgerSnapshot } from './governance.js';
import { chooseDecisionMode, migrationBucket } from './migration.js';
import { fireTimesBetween, type Schedule } from './schedule.js';
import type { TriggerDefinition } from './trigger-definition.js';

/** The trigger as a fire sees it: its definition and its live state (pause and breaker). */
export interface FiringTrigger {
  trigger_id: string;
  definition: TriggerDefinition;
  paused: boolean;
  pause_source: 'manual' | 'circuit_breaker' | null;
  pause_note: string | null;
  breaker: BreakerState;
}

/**
 * The fire being decided: a new one (from a job scheduler) or a manual run or backfill row written earlier.
 */
export interface FireToDecide {
  execution_id: string;
  scheduled_for: Date;
  manual: boolean;
  backfill: boolean;
  override_overlap: boolean;
  retry_count: number;
}

/** What governance decided for a fire, as written to its ledger row. */
export interface FireDecision {
  execution_id: string;
  status: 'pending' | 'running' | 'skipped';
  skip_reason: SkipReason | null;
  error: string | null;
  governance_checks: GovernanceCheck[];
  decision_mode: DecisionMode | null;
  /** Held against the daily cost cap until the run reports its cost. */
  reserved_cost_usd: number;
  /** The run is the breaker's half-open probe. */
  probe: boolean;
  /** Waiting in the `buffer_one` slot (or a backfill waiting its turn). */
  buffered: boolean;
  /** When a jittered start is due. */
  next_attempt_at: Date | null;
  started_at: Date | null;
  completed_at: Date | null;
  governed_at: Date;
}

/**
 * What a governed fire came to: skipped, waiting behind a run in flight, waiting for its jitter, or started.
 */
export type FireVerdictOutcome = 'skipped' | 'buffered' | 'delayed' | 'started';

export interface FireVerdict {
  decision: FireDecision;
  outcome: FireVerdictOutcome;
  /** The handlers to call now (only when `started`). */
  roles: HandlerRole[];
  /** Why it was skipped, for the log line. */
  why?: string;
}

/** A start later than this past now waits for its own wake-up (clock skew between replicas is smaller). */
const EARLY_TOLERANCE_MS = 50;

/**
 * Governs a fire and picks its path. Skips end the row at once; a `buffer` outcome parks it behind the run in
 * flight; a jittered scheduled fire waits until its start (deterministic per fire, so every replica and retry
 * agrees); otherwise the run starts with the roles the state machine names. Only a missing fallback handler
 * ends a run before any call.
 */
export function decideFire(input: {
  trigger: FiringTrigger;
  fire: FireToDecide;
  ledger: LedgerSnapshot;
  now: Date;
}): FireVerdict {
  const { trigger, fire, ledger, now } = input;
  const d = trigger.definition;
  const governance = evaluateGovernance({
    trigger: {
      enabled: d.enabled,
      paused: trigger.paused,
      pause_source: trigger.pause_source,
      pause_note: trigger.pause_note,
      cooldown_seconds: d.cooldown_seconds,
      max_daily_runs: d.max_daily_runs,
      max_daily_cost_usd: d.max_daily_cost_usd,
      max_cost_per_run_usd: d.max_cost_per_run_usd,
      overlap_policy: d.overlap_policy,
      catchup_window_seconds: d.catchup_window_seconds,
      circuit_breaker: d.circuit_breaker,
      probe_deadline_ms: probeDeadlineMs(d),
    },
    breaker: trigger.breaker,
    fire: {
      scheduled_for: fire.scheduled_for,
      manual: fire.manual,
      backfill: fire.backfill,
      override_overlap: fire.override_overlap,
    },
    ledger,
    now,
  });
  const base: FireDecision = {
    execution_id: fire.execution_id,
    status: 'skipped',
    governance_checks: governance.checks,
    governed_at: now,
    decision_mode: null,
    reserved_cost_usd: 0,
    probe: false,
    buffered: false,
    next_attempt_at: null,
    started_at: null,
    completed_at: null,
    skip_reason: null,
    error: null,
  };
  if (governance.outcome === 'skip') {
    const why = governance.checks.at(-1)?.reason;
    return {
      decision: { ...base, skip_reason: governance.skip_reason, error: why ?? null, completed_at: now },
      outcome: 'skipped',
      roles: [],
      ...(why ? { why } : {}),
    };
  }
  const mode = chooseDecisionMode({
    trigger_id: trigger.trigger_id,
    scheduled_for: fire.scheduled_for,
    mode: d.mode,
    fallback_strategy: d.fallback_strategy,
    migration_weight: d.migration_weight,
    has_agent: d.agent !== null,
    has_fallback: d.fallback !== null,
  });
  const governed: FireDecision = {
    ...base,
    decision_mode: mode,
    reserved_cost_usd: governance.reservation_usd,
    probe: governance.probe,
  };
  if (governance.outcome === 'buffer')
    return { decision: { ...governed, status: 'pending', buffered: true }, outcome: 'buffered', roles: [] };
  const jitterMs = jitterMsOf(trigger, fire);
  const startAt = new Date(fire.scheduled_for.getTime() + jitterMs);
  if (jitterMs > 0 && startAt.getTime() > now.getTime() + EARLY_TOLERANCE_MS)
    return {
      decision: { ...governed, status: 'pending', next_attempt_at: startAt },
      outcome: 'delayed',
      roles: [],
    };
  const step = nextExecutionStep({
    mode,
    fallback_strategy: d.fallback_strategy,
    has_fallback: d.fallback !== null,
    attempts: [],
    retry: {
      retry_on_failure: d.retry_on_failure,
      max_retries: d.max_retries,
      retry_delay_seconds: d.retry_delay_seconds,
    },
    retry_count: fire.retry_count,
    probe: governance.probe,
  });
  if (step.kind !== 'start') {
    return {
      decision: {
        ...governed,
        status: 'skipped',
        skip_reason: 'no_fallback_handler',
        error: 'no fallback handler',
        completed_at: now,
        reserved_cost_usd: 0,
        probe: false,
      },
      outcome: 'skipped',
      roles: [],
      why: 'no fallback handler',
    };
  }
  return {
    decision: { ...governed, status: 'running', started_at: now },
    outcome: 'started',
    roles: step.roles,
  };
}

/** How much later than its fire time a scheduled run starts (manual runs and backfills start at once). */
function jitterMsOf(trigger: FiringTrigger, fire: FireToDecide): number {
  const jitter = trigger.definition.jitter_ms;
  if (fire.manual || fire.backfill || jitter <= 0) return 0;
  return Math.floor(migrationBucket(`${trigger.trigger_id}/jitter`, fire.scheduled_for) * jitter);
}

/**
 * The fire times a late job hid: BullMQ collapses fires due while no scheduler ran (or all were busy) into
 * one late job, so a fire taken off the queue at `processedOn` later than the shortest gap between two fires
 * stands for every fire between its own time and then. They are recorded as missed, never run.
 *
 * @param limit - most fire times returned (a scheduler down for days would otherwise write millions of rows).
 */
export function hiddenFireTimes(
  schedule: Schedule,
  scheduledFor: Date,
  processedOn: Date,
  limit: number,
): Date[] {
  const shortestGapMs = schedule.kind === 'every' ? schedule.everyMs : 60_000;
  if (processedOn.getTime() - scheduledFor.getTime() < shortestGapMs) return [];
  return fireTimesBetween(schedule, scheduledFor, processedOn, limit);
}
