/**
 * A person's decisions on a finding: resolve it (a later scan that sees it again reopens it) or silence it
 * until a time (scans count it but open nothing). Each is audited on the finding's follow-up task with who
 * made it, in the caller's transaction.
 */
import type { LeadFindingView } from '@warden/domain';
import {
  appendAudits,
  lockLeadTenant,
  readLeadFindingRow,
  toLeadFindingView,
  updateLeadFinding,
  type LeadFindingChange,
  type LeadFindingRow,
  type QueryExecutor,
} from '@warden/db';
import { findingChangedAudit } from './lead-audits.js';

export type ChangeLeadFindingResult =
  | { status: 'changed'; finding: LeadFindingView }
  | { status: 'not_found' }
  /** Nothing to change (resolving a resolved finding): the finding as it is. */
  | { status: 'unchanged'; finding: LeadFindingView };

interface FindingChangeRequest {
  tenantId: string;
  fingerprint: string;
  /** Who decided (`api_key:<id>`), recorded on the finding and in the audit row. */
  by: string;
  note?: string;
  now: Date;
}

/** Marks a finding resolved (audited). Resolving a resolved finding changes nothing (`unchanged`). */
export async function resolveLeadFinding(
  trx: QueryExecutor,
  request: FindingChangeRequest,
): Promise<ChangeLeadFindingResult> {
  return changeLeadFinding(trx, request, 'LEAD_FINDING_RESOLVED', (row) =>
    row.status === 'resolved'
      ? undefined
      : {
          status: 'resolved',
          resolved_at: request.now,
          resolved_by: request.by,
          silenced_until: null,
          silenced_by: null,
          note: request.note ?? null,
        },
  );
}

/** Silences a finding until `until` (audited): later scans count it but open nothing for it. */
export async function silenceLeadFinding(
  trx: QueryExecutor,
  request: FindingChangeRequest & { until: Date },
): Promise<ChangeLeadFindingResult> {
  return changeLeadFinding(trx, request, 'LEAD_FINDING_SILENCED', () => ({
    status: 'silenced',
    silenced_until: request.until,
    silenced_by: request.by,
    resolved_at: null,
    resolved_by: null,
    note: request.note ?? null,
  }));
}

/**
 * Locks the tenant's lead writes (a scan storing findings waits) and the finding, asks `change` what to
 * change given the row as it is, applies it and audits it.
 */
async function changeLeadFinding(
  trx: QueryExecutor,
  request: FindingChangeRequest,
  eventType: 'LEAD_FINDING_RESOLVED' | 'LEAD_FINDING_SILENCED',
  change: (row: LeadFindingRow) => LeadFindingChange | undefined,
): Promise<ChangeLeadFindingResult> {
  await lockLeadTenant(trx, request.tenantId);
  const row = await readLeadFindingRow(trx, request.tenantId, request.fingerprint, { forUpdate: true });
  if (!row) return { status: 'not_found' };
  const update = change(row);
  if (!update) return { status: 'unchanged', finding: toLeadFindingView(row) };
  const finding = await updateLeadFinding(trx, request.tenantId, request.fingerprint, update);
  await appendAudits(
    trx,
    [
      findingChangedAudit(request.tenantId, eventType, row, {
        by: request.by,
        ...(request.note !== undefined ? { note: request.note } : {}),
        silencedUntil: update.silenced_until ?? null,
      }),
    ],
    request.now,
  );
  return { status: 'changed', finding };
}
