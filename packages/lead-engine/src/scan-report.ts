/**
 * The report of one scan — what `warden lead scan --json` prints, what a scan job returns and what
 * `lead_scans.stats` records — and the pure steps that fill it in as the scan goes.
 */
import {
  leadFollowUpTaskId,
  severityAtLeast,
  type LeadFindingDraft,
  type LeadFindingUpsertPlan,
  type LeadScanFindingResult,
  type LeadScanReport,
  type LeadScanWarning,
  type LeadScanWindow,
} from '@warden/domain';

/** One raw finding of a scan: how it compared with what was stored, and what became of it. */
export interface FindingResult {
  fingerprint: string;
  outcome: LeadScanFindingResult['outcome'];
  /** The finding is open and has no follow-up task yet. */
  needsFollowUp: boolean;
  /** The report's entry, updated in place as its follow-up is created. */
  result: LeadScanFindingResult;
}

/** A report with every counter at zero, before anything ran. */
export function emptyLeadScanReport(context: {
  tenantId: string;
  scanId: string | null;
  window: LeadScanWindow;
  rulesVersion: string;
  dryRun: boolean;
  forced: boolean;
  started: Date;
  status: LeadScanReport['status'];
}): LeadScanReport {
  return {
    timestamp: context.started.toISOString(),
    window_kind: context.window.kind,
    window: { start: context.window.start.toISOString(), end: context.window.end.toISOString() },
    findings_count: 0,
    tasks_created: 0,
    dry_run: context.dryRun,
    stats: {
      started_at: context.started.toISOString(),
      completed_at: null,
      raw_findings: 0,
      new_findings: 0,
      duplicate_findings: 0,
      tasks_created: 0,
      tasks_skipped: 0,
      error: null,
      reopened_findings: 0,
      silenced_findings: 0,
      decisions_scanned: 0,
      warnings: [],
    },
    scan_id: context.scanId,
    tenant_id: context.tenantId,
    status: context.status,
    forced: context.forced,
    rules_version: context.rulesVersion,
    findings: [],
  };
}

/**
 * A raw finding's result. `task_id` is the link it already has — or, in a dry run, the follow-up it would
 * get; a real scan fills it in when it creates the task.
 */
export function findingResult(
  draft: LeadFindingDraft,
  stored: { plan: LeadFindingUpsertPlan; linked_task_id: string | null },
  dryRun: boolean,
): FindingResult {
  const { plan } = stored;
  const wouldCreate = dryRun && plan.needs_follow_up;
  return {
    fingerprint: draft.fingerprint,
    outcome: plan.outcome,
    needsFollowUp: plan.needs_follow_up,
    result: {
      fingerprint: draft.fingerprint,
      code: draft.rule_code,
      severity: draft.severity,
      title: draft.title,
      outcome: plan.outcome,
      task_id: stored.linked_task_id ?? (wouldCreate ? leadFollowUpTaskId(draft.fingerprint) : null),
      task_created: false,
      would_create_task: wouldCreate,
    },
  };
}

/** Puts the outcome counters of the findings into the report (a reopened or silenced finding is also a duplicate). */
export function tallyFindings(report: LeadScanReport, results: readonly FindingResult[]): void {
  const { stats } = report;
  report.findings = results.map((r) => r.result);
  stats.new_findings = results.filter((r) => r.outcome === 'new').length;
  stats.duplicate_findings = results.length - stats.new_findings;
  stats.reopened_findings = results.filter((r) => r.outcome === 'reopened').length;
  stats.silenced_findings = results.filter((r) => r.outcome === 'silenced').length;
}

/**
 * Closes the report's counters, whether the scan completed or failed: `tasks_skipped` is every finding that
 * needed a follow-up and did not get one in this run (all of them in a dry run).
 */
export function settleLeadScanReport(
  report: LeadScanReport,
  results: readonly FindingResult[],
  completedAt: Date,
): void {
  const needing = results.filter((r) => r.needsFollowUp).length;
  report.stats.tasks_skipped = Math.max(0, needing - report.stats.tasks_created);
  report.tasks_created = report.stats.tasks_created;
  report.findings_count = report.stats.new_findings;
  report.stats.completed_at = completedAt.toISOString();
}

/** 0 for CRITICAL … 3 for LOW. */
function urgencyRank(result: FindingResult): number {
  const { severity } = result.result;
  if (severityAtLeast(severity, 'CRITICAL')) return 0;
  if (severityAtLeast(severity, 'HIGH')) return 1;
  if (severityAtLeast(severity, 'MEDIUM')) return 2;
  return 3;
}

/**
 * The findings that need a follow-up, most urgent first, so a scan that stops half-way has opened the tasks
 * that matter most. Stable: findings of one severity keep the rules' order.
 */
export function followUpsByUrgency(results: readonly FindingResult[]): FindingResult[] {
  return results.filter((r) => r.needsFollowUp).sort((a, b) => urgencyRank(a) - urgencyRank(b));
}

/** `LEAD_FOLLOW_UP_CONFLICT`: the finding's follow-up id is taken by a task that is not its follow-up. */
export function followUpConflictWarning(fingerprint: string, taskId: string): LeadScanWarning {
  return {
    code: 'LEAD_FOLLOW_UP_CONFLICT',
    message: `finding ${fingerprint} got no follow-up: a task ${taskId} exists that is not its follow-up; rename or remove it`,
    details: { fingerprint, task_id: taskId },
  };
}
