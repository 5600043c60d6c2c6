import {
  breakerFailureRate,
  EXECUTION_STATUSES,
  nextFireTimes,
  scheduleOf,
  type ExecutionStatus,
  type TriggerStatusView,
} from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import { consecutiveAgentFailures, latestRollbackReport, shadowConsistency } from './cron-migration.js';
import { latestExecutions, triggerWindowStats } from './execution-history.js';
import { recentRunStatuses } from './executions.js';
import { triggerEvents } from './trigger-audit-trail.js';
import { toTriggerView } from './trigger-rows.js';
import { getTrigger } from './triggers.js';

export interface TriggerStatusOptions {
  /** Next fire times to list. @defaultValue `5` */
  fires?: number;
  /** Hours of runs the success rate, mean duration and skip counts cover. @defaultValue `24` */
  windowHours?: number;
  /** Latest runs to list. @defaultValue `5` */
  lastRuns?: number;
  now?: Date;
}

/**
 * Everything an operator asks about a trigger at once (`GET /v1/triggers/:name/status`): its configuration,
 * the next fires (from the parser the firing uses), the latest runs, success rate, mean duration and skip
 * counts over a window, the breaker, the migration's consistency and last rollback, and the recent audited
 * events.
 */
export async function triggerStatus(
  db: QueryExecutor,
  tenantId: string,
  eventName: string,
  options: TriggerStatusOptions = {},
): Promise<TriggerStatusView> {
  const now = options.now ?? new Date();
  const windowHours = options.windowHours ?? 24;
  const record = await getTrigger(db, tenantId, eventName);
  const d = record.definition;
  const since = new Date(now.getTime() - windowHours * 3600_000);
  const [stats, lastRuns, breakerStatuses, consistency, agentFailures, rollback, events] = await Promise.all([
    triggerWindowStats(db, record.trigger_id, since),
    latestExecutions(db, record.trigger_id, options.lastRuns ?? 5),
    recentRunStatuses(db, record.trigger_id, record.breaker_reset_at, d.circuit_breaker.window),
    shadowConsistency(
      db,
      record.trigger_id,
      d.migration.consistency_window,
      record.migration_window_started_at,
    ),
    consecutiveAgentFailures(
      db,
      record.trigger_id,
      Math.max(d.migration.rollback_after_agent_failures, 10),
      record.migration_window_started_at,
    ),
    latestRollbackReport(db, record.trigger_id),
    triggerEvents(db, tenantId, eventName, 10),
  ]);
  const byStatus = Object.fromEntries(EXECUTION_STATUSES.map((s) => [s, stats.by_status[s] ?? 0])) as Record<
    ExecutionStatus,
    number
  >;
  const finished = byStatus.success + byStatus.fallback + byStatus.failed;
  const breakerWindow = breakerFailureRate(breakerStatuses);
  const view = toTriggerView(record);
  return {
    trigger: view,
    enabled: d.enabled,
    paused: record.paused,
    next_fires: d.enabled
      ? nextFireTimes(scheduleOf(d.expression, d.timezone), now, options.fires ?? 5).map((t) =>
          t.toISOString(),
        )
      : [],
    last_runs: lastRuns,
    window: {
      hours: windowHours,
      runs: Object.values(byStatus).reduce((a, b) => a + b, 0),
      by_status: byStatus,
      success_rate: finished === 0 ? null : (byStatus.success + byStatus.fallback) / finished,
      average_duration_ms: stats.average_duration_ms,
      skipped_by_reason: stats.skipped_by_reason,
      cost_usd: Math.round(stats.cost_usd * 1e6) / 1e6,
    },
    breaker: { ...view.breaker, recent_failure_rate: breakerWindow.rate, recent_runs: breakerWindow.runs },
    migration: {
      mode: d.mode,
      migration_weight: d.migration_weight,
      consistency: {
        ...consistency,
        threshold: d.migration.consistency_threshold,
        window: d.migration.consistency_window,
      },
      consecutive_agent_failures: agentFailures,
      last_rollback: rollback
        ? {
            report_id: rollback.report_id,
            red_line: rollback.red_line,
            created_at: rollback.created_at.toISOString(),
            follow_up_task_id: rollback.follow_up_task_id,
            markdown: rollback.markdown,
          }
        : null,
    },
    recent_events: events,
  };
}
