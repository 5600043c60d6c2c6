/**
 * The `cron_execution_attempts` repository: one row per handler call (agent or fallback, per try), with its
 * deadline and how it ended.
 */
import { sql, type Insertable } from 'kysely';
import type { CronAttemptRow, CronExecutionAttemptsTable } from './tables.js';
import type { QueryExecutor } from '../database.js';

/** Cost and LLM calls reported by every handler call of a run (all tries, both roles). */
export async function attemptTotals(
  trx: QueryExecutor,
  executionId: string,
): Promise<{ cost_usd: number | null; llm_calls: number }> {
  const row = await sql<{ cost: string | null; calls: string | null }>`
    select sum((result ->> 'cost_usd')::numeric) as cost, sum((result ->> 'llm_calls')::int) as calls
      from cron_execution_attempts where execution_id = ${executionId}`.execute(trx);
  const r = row.rows[0];
  return { cost_usd: r?.cost == null ? null : Number(r.cost), llm_calls: Number(r?.calls ?? 0) };
}

/**
 * A handler call about to be made (it is recorded `running`; how it ends is written by {@link
 * finishAttempt}).
 */
export type NewAttempt = Omit<
  Insertable<CronExecutionAttemptsTable>,
  'status' | 'completed_at' | 'duration_ms' | 'result' | 'error_kind' | 'error'
>;

/**
 * Records handler calls about to be made; a call already recorded (a re-run of the same step) is kept as it
 * is.
 */
export async function insertAttempts(trx: QueryExecutor, attempts: readonly NewAttempt[]): Promise<void> {
  if (attempts.length === 0) return;
  await trx
    .insertInto('cron_execution_attempts')
    .values(attempts.map((a) => ({ ...a, status: 'running' as const })))
    .onConflict((oc) => oc.columns(['execution_id', 'try', 'role']).doNothing())
    .execute();
}

export async function attemptsOfTry(
  trx: QueryExecutor,
  executionId: string,
  attempt: number,
): Promise<CronAttemptRow[]> {
  return trx
    .selectFrom('cron_execution_attempts')
    .selectAll()
    .where('execution_id', '=', executionId)
    .where('try', '=', attempt)
    .orderBy('role')
    .execute();
}

/** Locks a handler call's row until the transaction ends. */
export async function lockAttempt(
  trx: QueryExecutor,
  attemptId: string,
): Promise<CronAttemptRow | undefined> {
  return trx
    .selectFrom('cron_execution_attempts')
    .selectAll()
    .where('attempt_id', '=', attemptId)
    .forUpdate()
    .executeTakeFirst();
}

/**
 * Records how a handler call ended — only if it is still running: a late or repeated report (the call timed
 * out meanwhile, or a stalled worker ran it twice) changes nothing. Returns the updated row or undefined.
 */
export async function finishAttempt(
  trx: QueryExecutor,
  input: {
    attempt_id: string;
    status: 'success' | 'failed' | 'timeout';
    result?: Record<string, unknown> | null;
    error_kind?: string | null;
    error?: string | null;
    now: Date;
  },
): Promise<CronAttemptRow | undefined> {
  return trx
    .updateTable('cron_execution_attempts')
    .set({
      status: input.status,
      completed_at: input.now,
      duration_ms: sql<number>`greatest(0, (extract(epoch from ${input.now}::timestamptz - started_at) * 1000)::int)`,
      result: input.result ? JSON.stringify(input.result) : null,
      error_kind: input.error_kind ?? null,
      error: input.error ?? null,
    })
    .where('attempt_id', '=', input.attempt_id)
    .where('status', '=', 'running')
    .returningAll()
    .executeTakeFirst();
}
