import { sql } from 'kysely';
import {
  buildRollbackReport,
  consecutiveFailures,
  consistencyOf,
  deterministicId,
  triggerAuditTaskId,
  type Consistency,
  type OutputDifference,
  type RedLine,
  type RollbackReport,
  type RollbackRun,
  type TriggerMode,
} from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import { appendAudits } from '../core/audits.js';


/** Shadow consistency over the trigger's latest `window` comparisons. */
export async function shadowConsistency(
  db: QueryExecutor,
  triggerId: string,
  window: number,
): Promise<Consistency> {
  const rows = await db
    .selectFrom('cron_executions')
    .select(sql<boolean>`(comparison ->> 'equal')::boolean`.as('equal'))
    .where('trigger_id', '=', triggerId)
    .where('comparison', 'is not', null)
    .orderBy('scheduled_for', 'desc')
    .limit(window)
    .execute();
  return consistencyOf(
    rows.map((r) => r.equal),
    window,
  );
}

/** How many of the agent's latest finished calls failed in a row (newest first). */
export async function consecutiveAgentFailures(
  db: QueryExecutor,
  triggerId: string,
  lookBack: number,
): Promise<number> {
  const rows = await db
    .selectFrom('cron_execution_attempts')
    .select('status')
    .where('trigger_id', '=', triggerId)
    .where('role', '=', 'agent')
    .where('status', '<>', 'running')
    .orderBy('completed_at', 'desc')
    .limit(lookBack)
    .execute();
  return consecutiveFailures(rows.map((r) => r.status as 'success' | 'failed' | 'timeout'));
}

export interface RolledBack {
  report_id: string;
  follow_up_task_id: string;
  report: RollbackReport;
}

/**
 * Rolls a migration back in the caller's transaction (which holds the trigger's lock): weight 0 and mode
 * `live`, a generated report (what tripped, the last runs, samples of differing outputs), a follow-up task
 * carrying the report in its metadata, and `MIGRATION_ROLLED_BACK` / `FOLLOW_UP_CREATED` on the audit chain.
 */
export async function rollbackMigration(
  trx: QueryExecutor,
  input: {
    tenant_id: string;
    trigger_id: string;
    event_name: string;
    red_line: RedLine;
    detail: string;
    from: { migration_weight: number; mode: TriggerMode };
    consistency: Consistency;
    now: Date;
  },
): Promise<RolledBack> {
  const runs = await trx
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
    .where('trigger_id', '=', input.trigger_id)
    .where('status', 'in', ['success', 'failed', 'fallback'])
    .orderBy('scheduled_for', 'desc')
    .limit(10)
    .execute();
  const last_runs: RollbackRun[] = runs.map((r) => ({
    execution_id: r.execution_id,
    scheduled_for: r.scheduled_for.toISOString(),
    status: r.status as RollbackRun['status'],
    decision_mode: r.decision_mode as RollbackRun['decision_mode'],
    agent_outcome: r.agent_outcome,
    error: r.error,
    equal: r.comparison ? Boolean(r.comparison.equal) : null,
  }));
  const diffRows = await trx
    .selectFrom('cron_executions')
    .select(['execution_id', 'comparison'])
    .where('trigger_id', '=', input.trigger_id)
    .where(sql<boolean>`(comparison ->> 'equal')::boolean = false`)
    .orderBy('scheduled_for', 'desc')
    .limit(5)
    .execute();
  const report = buildRollbackReport({
    event_name: input.event_name,
    red_line: input.red_line,
    detail: input.detail,
    now: input.now,
    from: input.from,
    consistency: input.consistency,
    last_runs,
    diff_samples: diffRows.map((r) => ({
      execution_id: r.execution_id,
      differences: ((r.comparison?.differences as OutputDifference[] | undefined) ?? []).slice(0, 5),
    })),
  });

  await trx
    .updateTable('cron_triggers')
    .set({ migration_weight: 0, mode: 'live', updated_at: input.now })
    .where('trigger_id', '=', input.trigger_id)
    .execute();

  const reportId = deterministicId('cron-rollback', input.trigger_id, input.now.toISOString());
  const taskId = `cron-rollback-${input.event_name}-${reportId.slice(0, 8)}`;
  await trx
    .insertInto('tasks')
    .values({
      tenant_id: input.tenant_id,
      task_id: taskId,
      // Work for a person, ready to pick up (as the lead miner opens its HIGH follow-ups).
      status: 'ready',
      metadata: JSON.stringify({
        kind: 'follow_up',
        source: 'scheduler',
        title: report.title,
        priority: 2,
        trigger: input.event_name,
        red_line: input.red_line,
        report_id: reportId,
        report: {
          detail: report.detail,
          from: report.from,
          to: report.to,
          consistency: report.consistency,
          next_steps: report.next_steps,
        },
        report_markdown: report.markdown,
      }),
    })
    .onConflict((oc) => oc.columns(['tenant_id', 'task_id']).doNothing())
    .execute();
  await trx
    .insertInto('cron_rollback_reports')
    .values({
      report_id: reportId,
      tenant_id: input.tenant_id,
      trigger_id: input.trigger_id,
      event_name: input.event_name,
      red_line: input.red_line,
      report: JSON.stringify(report),
      markdown: report.markdown,
      follow_up_task_id: taskId,
    })
    .execute();
  await appendAudits(trx, [
    {
      tenant_id: input.tenant_id,
      task_id: triggerAuditTaskId(input.event_name),
      event_type: 'MIGRATION_ROLLED_BACK',
      level: 'warn',
      decision_id: null,
      event_id: null,
      source_event_ts: null,
      payload: {
        event_name: input.event_name,
        red_line: input.red_line,
        detail: input.detail,
        from: input.from,
        to: report.to,
        report_id: reportId,
        follow_up_task_id: taskId,
        consistency: input.consistency,
        by: 'scheduler',
      },
    },
    {
      tenant_id: input.tenant_id,
      task_id: taskId,
      event_type: 'FOLLOW_UP_CREATED',
      level: 'warn',
      decision_id: null,
      event_id: null,
      source_event_ts: null,
      payload: {
        source: 'scheduler',
        reason: 'MIGRATION_ROLLED_BACK',
        trigger: input.event_name,
        report_id: reportId,
        title: report.title,
      },
    },
  ]);
  return { report_id: reportId, follow_up_task_id: taskId, report };
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
