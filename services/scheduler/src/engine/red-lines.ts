/**
 * The migration's red lines after a run the agent took part in: while a trigger is migrating, too many agent
 * failures in a row or shadow consistency below the bar roll it back at once, in the transaction that
 * finished the run — weight 0 and mode `live`, a rollback report, a follow-up task and the audit rows
 * (`planRollback`, pure). A rollback is an alert.
 */
import {
  appendTriggerAudits,
  consecutiveAgentFailures,
  insertFollowUpTask,
  insertRollbackReport,
  rollbackEvidence,
  shadowConsistency,
  writeMigrationSettings,
  type TriggerRecord,
} from '@warden/db';
import { consistencyOf, evaluateRedLines, planRollback } from '@warden/domain';
import type { EngineContext, Effects, Trx } from './engine-context.js';

/** Checks the red lines and rolls the migration back when one trips. */
export async function checkRedLines(
  trx: Trx,
  effects: Effects,
  ctx: EngineContext,
  trigger: TriggerRecord,
  now: Date,
): Promise<void> {
  const d = trigger.definition;
  const migrating =
    d.agent !== null && d.fallback !== null && (d.mode === 'shadow' || d.migration_weight > 0);
  if (!migrating || !d.migration.auto_rollback) return;
  const [failures, consistency] = await Promise.all([
    consecutiveAgentFailures(
      trx,
      trigger.trigger_id,
      d.migration.rollback_after_agent_failures,
      trigger.migration_window_started_at,
    ),
    d.mode === 'shadow'
      ? shadowConsistency(
          trx,
          trigger.trigger_id,
          d.migration.consistency_window,
          trigger.migration_window_started_at,
        )
      : Promise.resolve(consistencyOf([], 1)),
  ]);
  const verdict = evaluateRedLines({
    config: d.migration,
    migrating,
    consecutive_agent_failures: failures,
    consistency,
  });
  if (!verdict.tripped || !verdict.red_line) return;
  const redLine = verdict.red_line;
  const plan = planRollback({
    trigger_id: trigger.trigger_id,
    event_name: d.event_name,
    red_line: redLine,
    detail: verdict.detail ?? redLine,
    from: { migration_weight: d.migration_weight, mode: d.mode },
    consistency,
    ...(await rollbackEvidence(trx, trigger.trigger_id)),
    now,
  });
  await writeMigrationSettings(trx, trigger.trigger_id, plan.report.to, now);
  await insertFollowUpTask(trx, {
    tenant_id: trigger.tenant_id,
    task_id: plan.follow_up_task_id,
    metadata: plan.follow_up_metadata,
  });
  await insertRollbackReport(trx, {
    report_id: plan.report_id,
    tenant_id: trigger.tenant_id,
    trigger_id: trigger.trigger_id,
    event_name: d.event_name,
    red_line: redLine,
    report: plan.report,
    follow_up_task_id: plan.follow_up_task_id,
  });
  await appendTriggerAudits(trx, trigger.tenant_id, plan.audits);
  effects.after.push(() => {
    ctx.metrics.rollbacks.inc({ red_line: redLine });
    ctx.log.error(
      {
        action: 'migration_rollback',
        status: 'rolled_back',
        alert: true,
        event_name: d.event_name,
        red_line: redLine,
        report_id: plan.report_id,
        follow_up_task_id: plan.follow_up_task_id,
      },
      `ALERT migration of ${d.event_name} rolled back: ${verdict.detail}`,
    );
  });
}
