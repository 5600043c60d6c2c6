/**
 * One call of a trigger's agent or fallback, as the handler sees it: its deadline and the context it gets.
 * Pure: the scheduler records the call with this deadline, then hands the context to the handler's queue or
 * URL after commit.
 */
import type { ExecutionStatus, HandlerRole, TriggerContext } from './execution.js';
import type { Target, TriggerDefinition } from './trigger-definition.js';

/**
 * When a call started at `now` times out: the trigger's `max_duration_ms` (or the scheduler's default), or an
 * HTTP target's `timeoutMs` when that is tighter.
 */
export function handlerCallDeadline(target: Target, maxDurationMs: number, now: Date): Date {
  const limitMs = 'url' in target ? Math.min(maxDurationMs, target.timeoutMs) : maxDurationMs;
  return new Date(now.getTime() + limitMs);
}

/** The run a handler call belongs to, as its ledger row has it. */
export interface RunOfCall {
  execution_id: string;
  scheduled_for: Date;
  triggered_at: Date;
  manual: boolean;
  params: Record<string, unknown>;
  retry_count: number;
}

/** The trigger's latest finished run before this one. */
export interface PreviousRun {
  execution_id: string;
  scheduled_for: Date;
  status: string;
  completed_at: Date | null;
}

/**
 * What the handler receives: the trigger, the fire, the previous run, and where this call stands in the run.
 */
export function handlerContext(input: {
  definition: TriggerDefinition;
  run: RunOfCall;
  role: HandlerRole;
  deadline: Date;
  previous: PreviousRun | null;
}): TriggerContext {
  const { definition: d, run, previous } = input;
  return {
    trigger_type: 'cron',
    event_name: d.event_name,
    focus: d.focus,
    expression: d.expression,
    timezone: d.timezone,
    scheduled_for: run.scheduled_for.toISOString(),
    triggered_at: run.triggered_at.toISOString(),
    previous_run: previous
      ? {
          execution_id: previous.execution_id,
          scheduled_for: previous.scheduled_for.toISOString(),
          status: previous.status as ExecutionStatus,
          completed_at: previous.completed_at?.toISOString() ?? null,
        }
      : null,
    payload: d.payload,
    manual: run.manual,
    params: run.params,
    execution_id: run.execution_id,
    retry_count: run.retry_count,
    role: input.role,
    deadline_at: input.deadline.toISOString(),
  };
}
