import type { Severity } from '../decisions.js';
import type { LeadEvidence } from './lead-finding.js';

/** Priority of a follow-up task by the severity of its finding: 1 is the most urgent (docs/lead-miner.md). */
export const LEAD_PRIORITY: Record<Severity, number> = { CRITICAL: 1, HIGH: 2, MEDIUM: 3, LOW: 4 };

/**
 * Follow-up tasks live in `tasks` next to supervised ones. CRITICAL and HIGH findings open them `ready` for
 * work; MEDIUM and LOW as `draft`, for a person to triage first.
 */
export type LeadFollowUpStatus = 'ready' | 'draft';

/** Marks a task as a lead follow-up in its metadata (`metadata.kind`). */
export const LEAD_FOLLOW_UP_KIND = 'lead_follow_up';

export interface LeadFollowUpFinding {
  fingerprint: string;
  rule_code: string;
  severity: Severity;
  title: string;
  description: string;
  window_kind: string;
  dimensions: Record<string, string>;
  evidence: LeadEvidence | Record<string, unknown>;
  first_seen_at: string;
}

export interface LeadFollowUpTask {
  task_id: string;
  /** `[LEAD][<window>] <code> - <title>` */
  title: string;
  priority: number;
  status: LeadFollowUpStatus;
  metadata: Record<string, unknown>;
}

/**
 * The task id of a finding's follow-up: derived from the fingerprint, so two scans racing with `--force`
 * cannot open two tasks for one finding (the second insert finds the first), and the finding's own audit
 * rows (reopened, resolved) land on the task it has or will have.
 */
export function leadFollowUpTaskId(fingerprint: string): string {
  return `lead-${fingerprint}`;
}

/** The follow-up task for a finding (docs/lead-miner.md): title, priority, ready or draft, the finding in its metadata. */
export function leadFollowUpTask(
  finding: LeadFollowUpFinding,
  context: { scan_id: string | null },
): LeadFollowUpTask {
  const title = `[LEAD][${finding.window_kind}] ${finding.rule_code} - ${finding.title}`;
  const priority = LEAD_PRIORITY[finding.severity];
  const status: LeadFollowUpStatus =
    finding.severity === 'CRITICAL' || finding.severity === 'HIGH' ? 'ready' : 'draft';
  return {
    task_id: leadFollowUpTaskId(finding.fingerprint),
    title,
    priority,
    status,
    metadata: {
      kind: LEAD_FOLLOW_UP_KIND,
      title,
      priority,
      created_by: 'lead-miner',
      scan_id: context.scan_id,
      finding: {
        fingerprint: finding.fingerprint,
        code: finding.rule_code,
        severity: finding.severity,
        title: finding.title,
        description: finding.description,
        window_kind: finding.window_kind,
        dimensions: finding.dimensions,
        evidence: finding.evidence,
        first_seen_at: finding.first_seen_at,
      },
    },
  };
}
