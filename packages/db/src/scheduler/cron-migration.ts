/**
 * The ledger side of a migration: shadow consistency and the agent's run of failures (read for the red lines
 * and for raising the weight), the evidence a rollback report shows, and the report and follow-up task a
 * rollback writes. What trips a red line and what a rollback contains are decided in @warden/domain.
 */
import { sql } from 'kysely';
import {
  consecutiveFailures,
  consistencyOf,
  type Consistency,
  type OutputDifference,
  type RedLine,
  type RollbackReport,
  type RollbackRun,
} from '@warden/domain';
import type { QueryExecutor } from '../database.js';

/**
 * Shadow consistency over the trigger's latest `window` comparisons of runs governed since `since` (the
 * trigger's `migration_window_started_at`; null counts all).
 */
export async function shadowConsistency(
  db: QueryExecutor,
  triggerId: string,
  window: number,
  since: Date | null,
): Promise<Consistency> {
  const rows = await db
    .selectFrom('cron_executions')
    .select(sql<boolean>`(comparison ->> 'equal')::boolean`.as('equal'))
    .where('trigger_id', '=', triggerId)
    .where('comparison', 'is not', null)
    .$if(since !== null, (q) => q.where('governed_at', '>=', since!))
    .orderBy('scheduled_for', 'desc')
    .limit(window)
    .execute();
  return consistencyOf(
    rows.map((r) => r.equal),
    window,
  );
}

/**
 * How many of the agent's latest finished calls failed in a row (newest first), counting calls started since
 * `since` (the trigger's `migration_window_started_at`; null counts all).
 */
export async function consecutiveAgentFailures(
  db: QueryExecutor,
  triggerId: string,
  lookBack: number,
  since: Date | null,
): Promise<number> {
  const rows = await db
    .selectFrom('cron_execution_attempts')
    .select('status')
    .where('trigger_id', '=', triggerId)
    .where('role', '=', 'agent')
    .$if(since !== null, (q) => q.where('started_at', '>=', since!))
    .where('status', '<>', 'running')
    .orderBy('completed_at', 'desc')
    .limit(lookBack)
    .execute();
  return consecutiveFailures(rows.map((r) => r.status as 'success' | 'failed' | 'timeout'));
}

/**
 * What a rollback report shows: the trigger's last finished runs, and samples of where shadow outputs
 * differed.
 */
export async function rollbackEvidence(
  db: QueryExecutor,
  triggerId: string,
): Promise<{
  last_runs: RollbackRun[];
  diff_samples: Array<{ execution_id: string; differences: OutputDifference[] }>;
}> {
  const [runs, diffRows] = await Promise.all([
    db
      .selectFrom('cron_executions')
      .select([
        'execution_id',
        'scheduled_for',
        'status',
        'decision_mode',
        'agent_outcome',
        'error',
        'comparison',
      ])
      .where('trigger_id', '=', triggerId)
      .where('status', 'in', ['success', 'failed', 'fallback'])
      .orderBy('scheduled_for', 'desc')
      .limit(10)
      .execute(),
    db
      .selectFrom('cron_executions')
      .select(['execution_id', 'comparison'])
      .where('trigger_id', '=', triggerId)
      .where(sql<boolean>`(comparison ->> 'equal')::boolean = false`)
      .orderBy('scheduled_for', 'desc')
      .limit(5)
      .execute(),
  ]);
  return {
    last_runs: runs.map((r) => ({
      execution_id: r.execution_id,
      scheduled_for: r.scheduled_for.toISOString(),
      status: r.status as RollbackRun['status'],
      decision_mode: r.decision_mode as RollbackRun['decision_mode'],
      agent_outcome: r.agent_outcome,
      error: r.error,
      equal: r.comparison ? Boolean(r.comparison.equal) : null,
    })),
    diff_samples: diffRows.map((r) => ({
      execution_id: r.execution_id,
      differences: ((r.comparison?.differences as OutputDifference[] | undefined) ?? []).slice(0, 5),
    })),
  };
}

/** Stores a rollback report (`cron_rollback_reports`), shown in the trigger's status. */
export async function insertRollbackReport(
  trx: QueryExecutor,
  row: {
    report_id: string;
    tenant_id: string;
    trigger_id: string;
    event_name: string;
    red_line: RedLine;
    report: RollbackReport;
    follow_up_task_id: string;
  },
): Promise<void> {
  await trx
    .insertInto('cron_rollback_reports')
    .values({ ...row, report: JSON.stringify(row.report), markdown: row.report.markdown })
    .execute();
}

/**
 * Opens the follow-up task of a rollback: `ready`, for a person to pick up. A task with that id already there
 * stays.
 */
export async function insertFollowUpTask(
  trx: QueryExecutor,
  input: { tenant_id: string; task_id: string; metadata: Record<string, unknown> },
): Promise<void> {
  await trx
    .insertInto('tasks')
    .values({
      tenant_id: input.tenant_id,
      task_id: input.task_id,
      // Work for a person, ready to pick up (as the lead miner opens its HIGH follow-ups).
      status: 'ready',
      metadata: JSON.stringify(input.metadata),
    })
    .onConflict((oc) => oc.columns(['tenant_id', 'task_id']).doNothing())
    .execute();
}

/** The latest rollback report of a trigger. */
export async function latestRollbackReport(db: QueryExecutor, triggerId: string) {
  return db
    .selectFrom('cron_rollback_reports')
    .select(['report_id', 'red_line', 'created_at', 'follow_up_task_id', 'markdown'])
    .where('trigger_id', '=', triggerId)
    .orderBy('created_at', 'desc')
    .limit(1)
    .executeTakeFirst();
}
