/**
 * Reads of a trigger's ledger for people: its history (keyset-paginated), the counts, mean duration and cost
 * over a window, and its latest runs.
 */
import { sql } from 'kysely';
import {
  encodeCursor,
  type ExecutionStatus,
  type ExecutionView,
  type Page,
  type SkipReason,
} from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import { toExecutionView } from './execution-rows.js';

export interface HistoryOptions {
  limit: number;
  /** Keyset position: the last item of the previous page. */
  before?: { scheduled_for: string; execution_id: string };
  status?: ExecutionStatus;
}

/** A trigger's executions, newest first, keyset-paginated on (scheduled_for, execution_id). */
export async function listTriggerExecutions(
  db: QueryExecutor,
  tenantId: string,
  triggerId: string,
  options: HistoryOptions,
): Promise<Page<ExecutionView>> {
  let query = db
    .selectFrom('cron_executions')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('trigger_id', '=', triggerId)
    .orderBy('scheduled_for', 'desc')
    .orderBy('execution_id', 'desc')
    .limit(options.limit + 1);
  if (options.status) query = query.where('status', '=', options.status);
  if (options.before) {
    const { scheduled_for, execution_id } = options.before;
    query = query.where(
      sql<boolean>`(scheduled_for, execution_id) < (${new Date(scheduled_for)}::timestamptz, ${execution_id}::uuid)`,
    );
  }
  const rows = await query.execute();
  const page = rows.slice(0, options.limit);
  const last = page.at(-1);
  return {
    items: page.map((row) => toExecutionView(row)),
    next_cursor:
      rows.length > options.limit && last
        ? encodeCursor({ s: last.scheduled_for.toISOString(), id: last.execution_id })
        : null,
  };
}

export interface TriggerWindowStats {
  by_status: Partial<Record<ExecutionStatus, number>>;
  skipped_by_reason: Partial<Record<SkipReason, number>>;
  average_duration_ms: number | null;
  cost_usd: number;
}

/** Counts by status and skip reason, mean duration and cost, over runs fired since `since`. */
export async function triggerWindowStats(
  db: QueryExecutor,
  triggerId: string,
  since: Date,
): Promise<TriggerWindowStats> {
  const rows = await db
    .selectFrom('cron_executions')
    .select((eb) => [
      'status',
      'skip_reason',
      eb.fn.countAll<string>().as('n'),
      sql<string | null>`avg(duration_ms) filter (where status in ('success','failed','fallback'))`.as(
        'avg_duration',
      ),
      sql<string | null>`sum(cost_usd)`.as('cost'),
    ])
    .where('trigger_id', '=', triggerId)
    .where('scheduled_for', '>=', since)
    .groupBy(['status', 'skip_reason'])
    .execute();
  const stats: TriggerWindowStats = {
    by_status: {},
    skipped_by_reason: {},
    average_duration_ms: null,
    cost_usd: 0,
  };
  let durationSum = 0;
  let durationRuns = 0;
  for (const row of rows) {
    const status = row.status as ExecutionStatus;
    const n = Number(row.n);
    stats.by_status[status] = (stats.by_status[status] ?? 0) + n;
    if (status === 'skipped' && row.skip_reason)
      stats.skipped_by_reason[row.skip_reason as SkipReason] =
        (stats.skipped_by_reason[row.skip_reason as SkipReason] ?? 0) + n;
    if (row.avg_duration !== null) {
      durationSum += Number(row.avg_duration) * n;
      durationRuns += n;
    }
    stats.cost_usd += Number(row.cost ?? 0);
  }
  stats.average_duration_ms = durationRuns === 0 ? null : Math.round(durationSum / durationRuns);
  return stats;
}

/** The trigger's latest executions, newest first. */
export async function latestExecutions(
  db: QueryExecutor,
  triggerId: string,
  limit: number,
): Promise<ExecutionView[]> {
  const rows = await db
    .selectFrom('cron_executions')
    .selectAll()
    .where('trigger_id', '=', triggerId)
    .orderBy('scheduled_for', 'desc')
    .limit(limit)
    .execute();
  return rows.map((row) => toExecutionView(row, { includeOutput: false }));
}
