/**
 * The trigger-level circuit breaker as a pure state machine. Its state lives on the trigger row in Postgres,
 * so every scheduler replica sees the same breaker; the scheduler changes it only inside the transaction that
 * locks the trigger.
 *
 * closed ──failure rate over the last `window` runs > threshold (with ≥ `min_runs`)──▶ open (trigger pauses)
 * open ──`reset_timeout_seconds` later, the next fire──▶ half_open (that one run is the probe)
 * half_open ──probe succeeds──▶ closed (trigger resumes, window restarts) │ probe fails ──▶ open again
 */
import type { ExecutionStatus } from './execution.js';
import type { CircuitBreakerConfig } from './trigger-definition.js';

export type BreakerStateName = 'closed' | 'open' | 'half_open';

export interface BreakerState {
  state: BreakerStateName;
  /** When it last opened. */
  opened_at: Date | null;
  /** The execution running as the half-open probe. */
  probe_execution_id: string | null;
  /** When that probe started (its deadline counts from here). @defaultValue `null` */
  probe_started_at?: Date | null;
  /** Why it opened, for people. */
  reason: string | null;
}

export const CLOSED_BREAKER: BreakerState = {
  state: 'closed',
  opened_at: null,
  probe_execution_id: null,
  reason: null,
};

export interface BreakerGate {
  allowed: boolean;
  /** This run is the half-open probe: it must run alone and decides the breaker. */
  probe: boolean;
  reason: string;
}

/** The scheduler's default `max_duration_ms`, for a probe's deadline when the trigger sets none. */
const DEFAULT_PROBE_CALL_MS = 900_000;
/** Slack on a probe's deadline for the sweeper to time out its calls. */
const PROBE_DEADLINE_SLACK_MS = 60_000;

/**
 * How long a half-open probe may decide: its agent call, then its fallback call, each up to `max_duration_ms`,
 * after its jitter, plus the sweeper's slack. A probe past this is taken as lost (its job vanished, its run was
 * never finished) and the next fire probes again, so the breaker cannot stay half-open for good.
 */
export function probeDeadlineMs(limits: { max_duration_ms: number | null; jitter_ms: number }): number {
  return 2 * (limits.max_duration_ms ?? DEFAULT_PROBE_CALL_MS) + limits.jitter_ms + PROBE_DEADLINE_SLACK_MS;
}

/**
 * Whether a fire may run as far as the breaker is concerned.
 *
 * @param probeDeadline - how long a half-open probe may decide ({@link probeDeadlineMs}). @defaultValue never
 *   expires
 */
export function breakerGate(
  breaker: BreakerState,
  config: CircuitBreakerConfig,
  now: Date,
  probeDeadline = Number.POSITIVE_INFINITY,
): BreakerGate {
  if (breaker.state === 'closed') return { allowed: true, probe: false, reason: 'closed' };
  if (breaker.state === 'half_open') {
    const startedAt = breaker.probe_started_at?.getTime();
    if (startedAt !== undefined && now.getTime() - startedAt > probeDeadline)
      return {
        allowed: true,
        probe: true,
        reason: `half-open probe ${breaker.probe_execution_id ?? '(unknown)'} passed its deadline (${Math.round(probeDeadline / 1000)} s) without deciding: this run probes again`,
      };
    return {
      allowed: false,
      probe: false,
      reason: `half-open: probe run ${breaker.probe_execution_id ?? '(unknown)'} is deciding`,
    };
  }
  const openedAt = breaker.opened_at?.getTime() ?? 0;
  const waitMs = openedAt + config.reset_timeout_seconds * 1000 - now.getTime();
  if (waitMs > 0) {
    return {
      allowed: false,
      probe: false,
      reason: `open since ${new Date(openedAt).toISOString()}${breaker.reason ? ` (${breaker.reason})` : ''}; a probe may run in ${Math.ceil(waitMs / 1000)} s`,
    };
  }
  return {
    allowed: true,
    probe: true,
    reason: `half-open probe: open for ${config.reset_timeout_seconds} s or more, this run decides`,
  };
}

/** Successes and failures among finished runs: skips are not runs, and the fallback serving counts as success. */
export function breakerFailureRate(statuses: readonly ExecutionStatus[]): {
  runs: number;
  failures: number;
  rate: number;
} {
  const finished = statuses.filter((s) => s === 'success' || s === 'fallback' || s === 'failed');
  const failures = finished.filter((s) => s === 'failed').length;
  return { runs: finished.length, failures, rate: finished.length === 0 ? 0 : failures / finished.length };
}

export interface BreakerAfterRun {
  state: BreakerState;
  transition: 'opened' | 'reopened' | 'closed' | null;
  runs: number;
  failure_rate: number;
}

/**
 * The breaker after a run finished with `status`. `recent` holds the final statuses of the trigger's latest
 * runs since the breaker last closed, newest first, this one included.
 */
export function breakerAfterRun(input: {
  config: CircuitBreakerConfig;
  breaker: BreakerState;
  execution_id: string;
  status: ExecutionStatus;
  recent: readonly ExecutionStatus[];
  now: Date;
}): BreakerAfterRun {
  const { config, breaker, now } = input;
  const window = breakerFailureRate(input.recent.slice(0, config.window));
  if (breaker.state === 'half_open' && breaker.probe_execution_id === input.execution_id) {
    if (input.status === 'success' || input.status === 'fallback')
      return { state: CLOSED_BREAKER, transition: 'closed', runs: window.runs, failure_rate: window.rate };
    return {
      state: {
        state: 'open',
        opened_at: now,
        probe_execution_id: null,
        reason: `half-open probe ${input.execution_id} failed`,
      },
      transition: 'reopened',
      runs: window.runs,
      failure_rate: window.rate,
    };
  }
  if (breaker.state !== 'closed')
    return { state: breaker, transition: null, runs: window.runs, failure_rate: window.rate };
  if (window.runs >= config.min_runs && window.rate > config.failure_threshold) {
    const reason = `${window.failures} of the last ${window.runs} runs failed (${Math.round(window.rate * 100)} % > ${Math.round(config.failure_threshold * 100)} %)`;
    return {
      state: { state: 'open', opened_at: now, probe_execution_id: null, reason },
      transition: 'opened',
      runs: window.runs,
      failure_rate: window.rate,
    };
  }
  return { state: breaker, transition: null, runs: window.runs, failure_rate: window.rate };
}

/**
 * The breaker after its half-open probe ended `skipped` (a skip is not a run, so it proves nothing): open again
 * with a fresh reset timer, so a later fire probes — never left half-open waiting for a verdict that will not
 * come. Null when the run was not the probe.
 */
export function breakerAfterSkippedProbe(input: {
  breaker: BreakerState;
  execution_id: string;
  why: string;
  now: Date;
}): BreakerState | null {
  if (input.breaker.state !== 'half_open' || input.breaker.probe_execution_id !== input.execution_id)
    return null;
  return {
    state: 'open',
    opened_at: input.now,
    probe_execution_id: null,
    probe_started_at: null,
    reason: `half-open probe ${input.execution_id} ended skipped (${input.why}): open again`,
  };
}
