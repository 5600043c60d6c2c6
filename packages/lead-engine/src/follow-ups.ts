/**
 * Step 6 of a scan: one follow-up task per open finding without one. Each task is created in ONE
 * transaction with its link and its `LEAD_FINDING_LINKED` audit row, so a crash leaves all three or none and
 * the next scan creates what is missing.
 */
import { LEAD_FOLLOW_UP_KIND, leadFollowUpTask, type LeadScanReport, type Severity } from '@warden/domain';
import {
  appendAudits,
  insertLeadFollowUpTask,
  lockLeadTenant,
  readLeadFindingRow,
  readTaskMetadata,
  updateLeadFinding,
  type Db,
  type LeadFindingRow,
  type QueryExecutor,
} from '@warden/db';
import { followUpLinkedAudit } from './lead-audits.js';
import { followUpConflictWarning, followUpsByUrgency, type FindingResult } from './scan-report.js';
import type { ScanWriteContext } from './store-findings.js';

export type LinkLeadFollowUpResult =
  | { status: 'created'; task_id: string }
  /** Linked meanwhile (another scan), or no longer open: nothing done. */
  | { status: 'not_needed'; task_id: string | null }
  /** A task with the derived id exists and is not this finding's follow-up: refused rather than taken over. */
  | { status: 'conflict'; task_id: string };

/** The follow-up task of a stored finding, as the domain composes it. */
function followUpTaskOf(row: LeadFindingRow, scanId: string | null) {
  return leadFollowUpTask(
    {
      fingerprint: row.fingerprint,
      rule_code: row.code,
      severity: row.severity as Severity,
      title: row.title,
      description: row.description,
      window_kind: row.window_kind,
      dimensions: row.dimensions,
      evidence: row.evidence,
      first_seen_at: row.first_seen_at.toISOString(),
    },
    { scan_id: scanId },
  );
}

/** Only a follow-up of this very finding (restored by hand, say) may be linked; anything else is someone's task. */
function isFollowUpOf(metadata: Record<string, unknown> | undefined, fingerprint: string): boolean {
  const finding = metadata?.finding as { fingerprint?: unknown } | undefined;
  return metadata?.kind === LEAD_FOLLOW_UP_KIND && finding?.fingerprint === fingerprint;
}

/**
 * Creates a finding's follow-up task and links it, with its `LEAD_FINDING_LINKED` audit row — all in the
 * caller's transaction, so a task never exists without its link (or the link without its task). Locks the
 * finding row first and re-checks it is open and unlinked.
 */
export async function createLeadFollowUp(
  trx: QueryExecutor,
  tenantId: string,
  fingerprint: string,
  context: { now: Date; scanId: string | null },
): Promise<LinkLeadFollowUpResult> {
  const row = await readLeadFindingRow(trx, tenantId, fingerprint, { forUpdate: true });
  if (!row || row.linked_task_id !== null || row.status !== 'open')
    return { status: 'not_needed', task_id: row?.linked_task_id ?? null };
  const task = followUpTaskOf(row, context.scanId);
  const inserted = await insertLeadFollowUpTask(trx, tenantId, task);
  if (!inserted && !isFollowUpOf(await readTaskMetadata(trx, tenantId, task.task_id), fingerprint))
    return { status: 'conflict', task_id: task.task_id };
  await updateLeadFinding(trx, tenantId, fingerprint, { linked_task_id: task.task_id });
  await appendAudits(trx, [followUpLinkedAudit(tenantId, row, task, context.scanId)], context.now);
  return { status: 'created', task_id: task.task_id };
}

/**
 * Creates the follow-ups the findings need, most urgent first, each in its own transaction under the
 * tenant's advisory lock. A failed one is rolled back (neither task nor link) and the others still get
 * theirs; the step then throws, naming the failures, and the next scan retries them.
 */
export async function createFollowUps(
  db: Db,
  tenantId: string,
  results: readonly FindingResult[],
  context: ScanWriteContext & {
    report: LeadScanReport;
    /** Runs inside each create-and-link transaction before it commits (failure injection in tests). */
    beforeCommit?: (trx: QueryExecutor, fingerprint: string) => Promise<void>;
  },
): Promise<void> {
  const needing = followUpsByUrgency(results);
  const { stats } = context.report;
  const failures: string[] = [];
  let done = 0;
  for (const finding of needing) {
    context.checkLease();
    let outcome: LinkLeadFollowUpResult;
    try {
      outcome = await db.transaction().execute(async (trx) => {
        await lockLeadTenant(trx, tenantId);
        const linked = await createLeadFollowUp(trx, tenantId, finding.fingerprint, context);
        if (linked.status === 'created') await context.beforeCommit?.(trx, finding.fingerprint);
        return linked;
      });
    } catch (error) {
      failures.push(`${finding.fingerprint}: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    } finally {
      done += 1;
    }
    if (outcome.status === 'created') {
      stats.tasks_created += 1;
      finding.result.task_id = outcome.task_id;
      finding.result.task_created = true;
    } else if (outcome.status === 'not_needed') {
      finding.result.task_id = outcome.task_id;
    } else {
      stats.warnings.push(followUpConflictWarning(finding.fingerprint, outcome.task_id));
    }
    context.progress({
      phase: 'follow_up',
      done,
      total: needing.length,
      message: `follow-up tasks: ${stats.tasks_created} created (${done}/${needing.length})`,
    });
  }
  if (failures.length > 0) {
    throw new Error(
      `${failures.length} of ${needing.length} follow-up tasks could not be created (the next scan retries them): ${failures.slice(0, 3).join('; ')}`,
    );
  }
}
