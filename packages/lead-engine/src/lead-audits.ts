/**
 * The audit rows the lead miner writes, composed here and appended by the callers in the transaction that
 * makes the change they record. Every row lands on the finding's follow-up task — the one it has, or the
 * one it will have (`lead-<fingerprint>`) — so a finding's history reads as one task's audit trail.
 */
import {
  leadFollowUpTaskId,
  type LeadFindingDraft,
  type LeadFindingUpsertPlan,
  type LeadFollowUpTask,
} from '@warden/domain';
import type { LeadFindingRow, NewAudit } from '@warden/db';

/** The fields every lead audit row shares: no decision, event or event time of its own. */
function leadAudit(
  tenantId: string,
  taskId: string,
  eventType: string,
  level: NewAudit['level'],
  payload: Record<string, unknown>,
): NewAudit {
  return {
    tenant_id: tenantId,
    task_id: taskId,
    event_type: eventType,
    level,
    decision_id: null,
    event_id: null,
    source_event_ts: null,
    payload,
  };
}

/**
 * The row for a stored finding a scan saw again, when that sighting is news: a resolved finding came back
 * (`LEAD_FINDING_REOPENED`, a regression, so `warn`) or a silence ran out (`LEAD_FINDING_SILENCE_EXPIRED`).
 * Undefined for a plain duplicate or a new finding (whose row is `LEAD_FINDING_LINKED`, with its task).
 */
export function findingSeenAgainAudit(
  tenantId: string,
  sighting: { draft: LeadFindingDraft; plan: LeadFindingUpsertPlan; linked_task_id: string | null },
  scanId: string | null,
): NewAudit | undefined {
  const { draft, plan, linked_task_id } = sighting;
  const reopened = plan.outcome === 'reopened';
  if (!reopened && !plan.silence_expired) return undefined;
  return leadAudit(
    tenantId,
    linked_task_id ?? leadFollowUpTaskId(draft.fingerprint),
    reopened ? 'LEAD_FINDING_REOPENED' : 'LEAD_FINDING_SILENCE_EXPIRED',
    reopened ? 'warn' : 'info',
    {
      fingerprint: draft.fingerprint,
      code: draft.rule_code,
      severity: draft.severity,
      title: draft.title,
      window_kind: draft.window_kind,
      reason: reopened
        ? 'a resolved finding was seen again (regression)'
        : 'the silence ran out and the finding was seen again',
      scan_id: scanId,
    },
  );
}

/** `LEAD_FINDING_LINKED`: a follow-up task was created for the finding and linked to it. */
export function followUpLinkedAudit(
  tenantId: string,
  finding: Pick<LeadFindingRow, 'fingerprint' | 'code' | 'severity' | 'window_kind'>,
  task: Pick<LeadFollowUpTask, 'task_id' | 'title' | 'priority' | 'status'>,
  scanId: string | null,
): NewAudit {
  return leadAudit(tenantId, task.task_id, 'LEAD_FINDING_LINKED', 'info', {
    fingerprint: finding.fingerprint,
    code: finding.code,
    severity: finding.severity,
    title: task.title,
    priority: task.priority,
    task_status: task.status,
    window_kind: finding.window_kind,
    scan_id: scanId,
  });
}

/** A person's decision on a finding (`LEAD_FINDING_RESOLVED`, `LEAD_FINDING_SILENCED`), with who and why. */
export function findingChangedAudit(
  tenantId: string,
  eventType: 'LEAD_FINDING_RESOLVED' | 'LEAD_FINDING_SILENCED',
  before: Pick<LeadFindingRow, 'fingerprint' | 'code' | 'status' | 'linked_task_id'>,
  request: { by: string; note?: string; silencedUntil?: Date | null },
): NewAudit {
  return leadAudit(
    tenantId,
    before.linked_task_id ?? leadFollowUpTaskId(before.fingerprint),
    eventType,
    'info',
    {
      fingerprint: before.fingerprint,
      code: before.code,
      by: request.by,
      note: request.note ?? null,
      previous_status: before.status,
      ...(request.silencedUntil ? { silenced_until: request.silencedUntil.toISOString() } : {}),
    },
  );
}
