/**
 * Ids and views of the execution ledger: a fire's execution id and a handler call's attempt id are derived
 * (every delivery and every replica computes the same one), and a `cron_executions` row maps to the view the
 * API shows.
 */
import {
  deterministicId,
  type ExecutionStatus,
  type ExecutionView,
  type GovernanceCheck,
  type HandlerRole,
  type SkipReason,
} from '@warden/domain';
import type { CronExecutionRow } from './tables.js';

const num = (value: string | null): number | null => (value === null ? null : Number(value));

/**
 * The execution id of a fire: derived from the trigger and the fire time, so every delivery computes the same
 * one.
 */
export function cronExecutionId(triggerId: string, scheduledFor: Date): string {
  return deterministicId('cron-execution', triggerId, String(scheduledFor.getTime()));
}

/** The id of one handler call: derived, so a re-dispatch of the same call is the same BullMQ job. */
export function cronAttemptId(executionId: string, attempt: number, role: HandlerRole): string {
  return deterministicId('cron-attempt', executionId, String(attempt), role);
}

/** A ledger row as the API shows it. */
export function toExecutionView(
  row: CronExecutionRow,
  options: { includeOutput?: boolean } = {},
): ExecutionView {
  return {
    execution_id: row.execution_id,
    event_name: row.event_name,
    scheduled_for: row.scheduled_for.toISOString(),
    triggered_at: row.triggered_at.toISOString(),
    started_at: row.started_at?.toISOString() ?? null,
    completed_at: row.completed_at?.toISOString() ?? null,
    duration_ms: row.duration_ms,
    status: row.status as ExecutionStatus,
    decision_mode: row.decision_mode as ExecutionView['decision_mode'],
    manual: row.manual,
    backfill: row.backfill,
    agent_run_id: row.agent_run_id,
    llm_calls: row.llm_calls,
    cost_usd: num(row.cost_usd),
    governance_checks: row.governance_checks as GovernanceCheck[],
    skip_reason: row.skip_reason as SkipReason | null,
    error: row.error,
    retry_count: row.retry_count,
    params: row.params,
    ...(options.includeOutput === false ? {} : { output: row.output ?? null }),
    comparison: row.comparison,
  };
}
