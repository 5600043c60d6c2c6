/**
 * What the sweeper looks for: handler calls past their deadline with no report, and runs whose wake-up or
 * fire job was lost. Nothing here changes a row; the scheduler moves each one on in its own transaction.
 */
import { sql } from 'kysely';
import type { QueryExecutor } from '../database.js';

/**
 * Handler calls past their deadline by `graceMs` and still running (their report or deadline job was lost).
 */
export async function overdueAttempts(
  db: QueryExecutor,
  now: Date,
  graceMs: number,
  limit: number,
): Promise<Array<{ attempt_id: string; execution_id: string }>> {
  return db
    .selectFrom('cron_execution_attempts')
    .select(['attempt_id', 'execution_id'])
    .where('status', '=', 'running')
    .where('deadline_at', '<', new Date(now.getTime() - graceMs))
    .orderBy('deadline_at')
    .limit(limit)
    .execute();
}

/**
 * Executions that should have moved on by now: governed runs due (a retry, a jittered start, a buffered run
 * whose turn came) whose job was lost, and rows never governed (a manual run or backfill whose fire job was
 * lost).
 */
export async function stalledExecutions(
  db: QueryExecutor,
  now: Date,
  graceMs: number,
  limit: number,
): Promise<
  Array<{
    execution_id: string;
    tenant_id: string;
    trigger_id: string;
    scheduled_for: Date;
    governed: boolean;
  }>
> {
  const cutoff = new Date(now.getTime() - graceMs);
  const rows = await sql<{
    execution_id: string;
    tenant_id: string;
    trigger_id: string;
    scheduled_for: Date;
    governed: boolean;
  }>`
    (select execution_id, tenant_id, trigger_id, scheduled_for, true as governed from cron_executions
      where status = 'pending' and governed_at is not null and not buffered and next_attempt_at < ${cutoff}
      order by next_attempt_at limit ${limit})
    union all
    (select execution_id, tenant_id, trigger_id, scheduled_for, false as governed from cron_executions
      where status = 'pending' and governed_at is null and triggered_at < ${cutoff}
      order by triggered_at limit ${limit})
    union all
    (select b.execution_id, b.tenant_id, b.trigger_id, b.scheduled_for, true as governed from cron_executions b
      where b.status = 'pending' and b.buffered and b.governed_at < ${cutoff}
        and not exists (select 1 from cron_executions o where o.trigger_id = b.trigger_id and o.status in ('pending','running')
                         and not o.buffered and o.governed_at is not null)
      limit ${limit})`.execute(db);
  return rows.rows;
}
