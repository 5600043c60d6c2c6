/**
 * A trigger's audit rows on the tenant's hash chain: writing the rows the rules in @warden/domain compose
 * (`AuditDraft`s), and reading a trigger's trail back for its status.
 */
import { triggerAuditTaskId, type AuditDraft } from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import { appendAudits } from '../core/audits.js';
import { recordNotifications, type NewNotification } from '../notifications/outbox.js';

const TRIGGER_PREFIX = 'trigger:';

/** The notification a trigger audit row calls for (a person should look), in the same transaction; else none. */
function notificationFor(tenantId: string, draft: AuditDraft): NewNotification | undefined {
  if (!draft.task_id.startsWith(TRIGGER_PREFIX)) return undefined;
  const trigger = draft.task_id.slice(TRIGGER_PREFIX.length);
  const subject = { kind: 'trigger' as const, id: trigger };
  const text = (value: unknown) =>
    typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
  if (draft.event_type === 'CIRCUIT_BREAKER_OPENED') {
    const reason = text(draft.payload.reason);
    return {
      tenant_id: tenantId,
      event_type: 'trigger.breaker_opened',
      subject,
      summary: `Trigger "${trigger}": its circuit breaker opened${reason ? ` (${reason})` : ''}; its runs are held until it recovers.`,
      details: {
        trigger: trigger,
        reason: reason ?? null,
        failure_rate: draft.payload.failure_rate ?? null,
        paused_trigger: draft.payload.paused_trigger ?? null,
      },
    };
  }
  if (draft.event_type === 'MIGRATION_ROLLED_BACK') {
    const redLine = text(draft.payload.red_line);
    return {
      tenant_id: tenantId,
      event_type: 'trigger.migration_rolled_back',
      subject,
      summary: `Trigger "${trigger}": its migration was rolled back${redLine ? ` (red line: ${redLine})` : ''}; a follow-up task was opened.`,
      details: {
        trigger: trigger,
        red_line: redLine ?? null,
        report_id: draft.payload.report_id ?? null,
        follow_up_task_id: draft.payload.follow_up_task_id ?? null,
      },
    };
  }
  return undefined;
}

/**
 * Appends audit drafts to the tenant's chain in the caller's transaction (so they commit with the change they
 * record), in the order given. A breaker that opened or a migration rolled back also gets its notification
 * (`trigger.breaker_opened`, `trigger.migration_rolled_back`) in the same transaction.
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
  await recordNotifications(
    trx,
    drafts.flatMap((draft) => notificationFor(tenantId, draft) ?? []),
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
