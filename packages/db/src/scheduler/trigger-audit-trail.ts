/**
 * A trigger's audit rows on the tenant's hash chain: writing the rows the rules in @warden/domain compose
 * (`AuditDraft`s), and reading a trigger's trail back for its status.
 */
import { triggerAuditTaskId, type AuditDraft } from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import { appendAudits } from '../core/audits.js';

/**
 * Appends audit drafts to the tenant's chain in the caller's transaction (so they commit with the change they
 * record), in the order given.
 *
 * @param processedAt - the rows' `processed_at`. @defaultValue now
 */
export async function appendTriggerAudits(
  trx: QueryExecutor,
  tenantId: string,
  drafts: readonly AuditDraft[],
  processedAt?: Date,
): Promise<void> {
  await appendAudits(
    trx,
    drafts.map((draft) => ({
      tenant_id: tenantId,
      ...draft,
      decision_id: null,
      event_id: null,
      source_event_ts: null,
    })),
    processedAt,
  );
}

/** The trigger's audit trail (pauses, resumes, weight changes, breaker transitions), newest first. */
export async function triggerEvents(db: QueryExecutor, tenantId: string, eventName: string, limit: number) {
  const rows = await db
    .selectFrom('task_audits')
    .select(['event_type', 'level', 'payload', 'created_at'])
    .where('tenant_id', '=', tenantId)
    .where('task_id', '=', triggerAuditTaskId(eventName))
    .orderBy('audit_id', 'desc')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    event_type: r.event_type,
    level: r.level,
    payload: r.payload,
    created_at: r.created_at.toISOString(),
  }));
}
