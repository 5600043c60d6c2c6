/**
 * What happens next in a run, given the handler calls of its current try (agent or fallback, then retries): a
 * pure state machine the scheduler consults after every change, so the answer is the same whichever
 * replica asks and however often.
 */
import type { DecisionMode, HandlerErrorKind, HandlerRole, SkipReason } from './execution.js';
import type { FallbackStrategy } from './trigger-definition.js';

export interface AttemptSnapshot {
  role: HandlerRole;
  status: 'running' | 'success' | 'failed' | 'timeout';
  error_kind: HandlerErrorKind | null;
  error: string | null;
}

export type ExecutionStep =
  /** A handler call is still out; nothing to do. */
  | { kind: 'wait' }
  /** Call these handlers now. */
  | { kind: 'start'; roles: HandlerRole[] }
  /** The run is over. `served_by` says whose output the run returns. */
  | {
      kind: 'finish';
      status: 'success' | 'fallback' | 'failed' | 'skipped';
      served_by: HandlerRole | null;
      skip_reason?: SkipReason;
      error?: string;
    }
  /** Try the run again after `delay_seconds` (same path: the weight hashes the fire). */
  | { kind: 'retry'; delay_seconds: number; error: string };

export interface RetryPolicy {
  retry_on_failure: boolean;
  max_retries: number;
  retry_delay_seconds: number;
}

/** Longest delay between retries. */
export const MAX_RETRY_DELAY_SECONDS = 3600;

/** Delay before retry number `retryIndex + 1`: `base × 2^retryIndex`, at most one hour. */
export function retryDelaySeconds(baseSeconds: number, retryIndex: number): number {
  return Math.min(MAX_RETRY_DELAY_SECONDS, baseSeconds * 2 ** retryIndex);
}

function describe(attempt: AttemptSnapshot): string {
  return `${attempt.role} ${attempt.status === 'timeout' ? 'timed out' : 'failed'}${attempt.error ? `: ${attempt.error}` : ''}`;
}

/**
 * The next step. `attempts` are this try's handler calls. A failed run is retried unless retries are off or
 * used up, a call failed validation (the same input would fail again), or the run is the breaker's probe.
 */
export function nextExecutionStep(input: {
  mode: DecisionMode;
  fallback_strategy: FallbackStrategy;
  has_fallback: boolean;
  attempts: readonly AttemptSnapshot[];
  retry: RetryPolicy;
  retry_count: number;
  probe: boolean;
}): ExecutionStep {
  const agent = input.attempts.find((a) => a.role === 'agent');
  const fallback = input.attempts.find((a) => a.role === 'fallback');

  const fail = (error: string): ExecutionStep => {
    const validation = input.attempts.some((a) => a.error_kind === 'validation');
    const { retry } = input;
    if (retry.retry_on_failure && !validation && !input.probe && input.retry_count < retry.max_retries) {
      return {
        kind: 'retry',
        delay_seconds: retryDelaySeconds(retry.retry_delay_seconds, input.retry_count),
        error,
      };
    }
    const why = validation
      ? ' (validation errors are not retried)'
      : input.probe
        ? ' (half-open probe: not retried)'
        : input.retry_count > 0
          ? ` (after ${input.retry_count} retr${input.retry_count === 1 ? 'y' : 'ies'})`
          : '';
    return { kind: 'finish', status: 'failed', served_by: null, error: error + why };
  };

  if (input.mode === 'shadow') {
    if (!agent || !fallback)
      return {
        kind: 'start',
        roles: [...(agent ? [] : ['agent' as const]), ...(fallback ? [] : ['fallback' as const])],
      };
    if (agent.status === 'running' || fallback.status === 'running') return { kind: 'wait' };
    // The fallback's output is what a shadow run returns; the agent only shadows it.
    if (fallback.status === 'success') return { kind: 'finish', status: 'fallback', served_by: 'fallback' };
    return fail(describe(fallback));
  }

  if (input.mode === 'fallback') {
    if (!input.has_fallback)
      return {
        kind: 'finish',
        status: 'skipped',
        served_by: null,
        skip_reason: 'no_fallback_handler',
        error: 'no fallback handler',
      };
    if (!fallback) return { kind: 'start', roles: ['fallback'] };
    if (fallback.status === 'running') return { kind: 'wait' };
    if (fallback.status === 'success') return { kind: 'finish', status: 'fallback', served_by: 'fallback' };
    return fail(describe(fallback));
  }

  if (!agent) return { kind: 'start', roles: ['agent'] };
  if (agent.status === 'running') return { kind: 'wait' };
  if (agent.status === 'success') return { kind: 'finish', status: 'success', served_by: 'agent' };
  if (input.fallback_strategy === 'never' || !input.has_fallback) {
    return fail(describe(agent) + (input.has_fallback ? '' : '; no fallback handler'));
  }
  if (!fallback) return { kind: 'start', roles: ['fallback'] };
  if (fallback.status === 'running') return { kind: 'wait' };
  if (fallback.status === 'success') return { kind: 'finish', status: 'fallback', served_by: 'fallback' };
  return fail(`${describe(agent)}; ${describe(fallback)}`);
}
