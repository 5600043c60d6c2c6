/**
 * The `cron_executions` repository for runs in flight: locking and updating a run, and what moving it on
 * reads (the previous run, the breaker's window, the `buffer_one` slot, runs in flight).
 */
import { sql, type Updateable } from 'kysely';
import type { ExecutionStatus, PreviousRun } from '@warden/domain';
import type { CronExecutionRow, CronExecutionsTable } from './tables.js';
import type { QueryExecutor } from '../database.js';

/**
 * Bounds how long the caller's transaction waits for a row lock, so a stuck statement cannot hold a trigger's
 * lock (and every fire of it) for long. Lasts until the transaction ends.
 */
export async function limitLockWait(trx: QueryExecutor, timeoutMs: number): Promise<void> {
  await sql`select set_config('lock_timeout', ${`${Math.max(1, Math.round(timeoutMs))}ms`}, true)`.execute(
    trx,
  );
}

function executionById(db: QueryExecutor, executionId: string) {
  return db.selectFrom('cron_executions').selectAll().where('execution_id', '=', executionId);
}

/** Locks an execution row until the transaction ends. */
export async function lockExecution(
  trx: QueryExecutor,
  executionId: string,
): Promise<CronExecutionRow | undefined> {
  return executionById(trx, executionId).forUpdate().executeTakeFirst();
}

export async function findExecution(
  db: QueryExecutor,
  executionId: string,
): Promise<CronExecutionRow | undefined> {
  return executionById(db, executionId).executeTakeFirst();
}

export async function updateExecution(
  trx: QueryExecutor,
  executionId: string,
  values: Updateable<CronExecutionsTable>,
): Promise<CronExecutionRow> {
  return trx
    .updateTable('cron_executions')
    .set(values)
    .where('execution_id', '=', executionId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** The latest finished run before `before` (the handler context's `previous_run`). */
export async function previousRun(
  trx: QueryExecutor,
  triggerId: string,
  before: Date,
): Promise<PreviousRun | null> {
  const row = await trx
    .selectFrom('cron_executions')
    .select(['execution_id', 'scheduled_for', 'status', 'completed_at'])
    .where('trigger_id', '=', triggerId)
    .where('status', 'in', ['success', 'failed', 'fallback'])
    .where('scheduled_for', '<', before)
    .orderBy('scheduled_for', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ?? null;
}

/** Final statuses of the trigger's latest runs fired after `since`, newest first (the breaker's window). */
export async function recentRunStatuses(
  trx: QueryExecutor,
  triggerId: string,
  since: Date | null,
  limit: number,
): Promise<ExecutionStatus[]> {
  let query = trx
    .selectFrom('cron_executions')
    .select('status')
    .where('trigger_id', '=', triggerId)
    .where('status', 'in', ['success', 'failed', 'fallback'])
    .orderBy('scheduled_for', 'desc')
    .limit(limit);
  if (since) query = query.where('scheduled_for', '>=', since);
  return (await query.execute()).map((r) => r.status as ExecutionStatus);
}

/** The run waiting in the trigger's `buffer_one` slot. */
export async function bufferedExecution(trx: QueryExecutor, triggerId: string): Promise<string | undefined> {
  const row = await trx
    .selectFrom('cron_executions')
    .select('execution_id')
    .where('trigger_id', '=', triggerId)
    .where('status', '=', 'pending')
    .where('buffered', '=', true)
    .orderBy('scheduled_for')
    .limit(1)
    .executeTakeFirst();
  return row?.execution_id;
}

/** Runs of the trigger in flight other than `executionId` (pending or running, not buffered). */
export async function inFlightCount(
  trx: QueryExecutor,
  triggerId: string,
  executionId: string,
): Promise<number> {
  const row = await trx
    .selectFrom('cron_executions')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('trigger_id', '=', triggerId)
    .where('status', 'in', ['pending', 'running'])
    .where('buffered', '=', false)
    .where('governed_at', 'is not', null)
    .where('execution_id', '<>', executionId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Runs in flight now, all tenants (the `cron_active_executions` gauge). */
export async function countActiveExecutions(db: QueryExecutor): Promise<number> {
  const row = await db
    .selectFrom('cron_executions')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('status', '=', 'running')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * What a trigger's other runs spent and reserved in a day (`[start, end)` of fire times), as the daily cost cap
 * counts it; `excludeExecutionId` is left out (the run asking).
 */
export async function costOfDayExcluding(
  trx: QueryExecutor,
  triggerId: string,
  day: { start: Date; end: Date },
  excludeExecutionId: string,
): Promise<number> {
  const row = await trx
    .selectFrom('cron_executions')
    .select(sql<string>`coalesce(sum(coalesce(cost_usd, 0) + reserved_cost_usd), 0)`.as('cost'))
    .where('trigger_id', '=', triggerId)
    .where('scheduled_for', '>=', day.start)
    .where('scheduled_for', '<', day.end)
    .where('status', '<>', 'skipped')
    .where('execution_id', '<>', excludeExecutionId)
    .executeTakeFirst();
  return Number(row?.cost ?? 0);
}

/** How many of a trigger's other runs (not skips) fired in a day, as the daily run cap counts them. */
export async function runsOfDayExcluding(
  trx: QueryExecutor,
  triggerId: string,
  day: { start: Date; end: Date },
  excludeExecutionId: string,
): Promise<number> {
  const row = await trx
    .selectFrom('cron_executions')
    .select((eb) => eb.fn.countAll<string>().as('runs'))
    .where('trigger_id', '=', triggerId)
    .where('scheduled_for', '>=', day.start)
    .where('scheduled_for', '<', day.end)
    .where('status', '<>', 'skipped')
    .where('governed_at', 'is not', null)
    .where('execution_id', '<>', excludeExecutionId)
    .executeTakeFirst();
  return Number(row?.runs ?? 0);
}
