/**
 * The notification outbox: a state change that people should hear about writes its notification here, in the
 * same transaction — so a notification exists exactly when the change committed — and the notifier fans each
 * row out to the tenant's subscribed channels (`dispatchNotifications`), one delivery row per channel.
 */
import {
  consolePathOf,
  type NotificationEvent,
  type NotificationEventType,
  type NotificationSubject,
} from '@warden/domain';
import type { QueryExecutor } from '../database.js';

export interface NewNotification {
  tenant_id: string;
  event_type: NotificationEventType;
  subject: NotificationSubject;
  /** One line a person reads first; no secrets, no event payloads. */
  summary: string;
  /** @defaultValue `{}` */
  details?: Record<string, unknown>;
  /** @defaultValue the insert's time */
  occurred_at?: Date;
}

/** Records notifications in the caller's transaction; they leave only once it commits. */
export async function recordNotifications(
  trx: QueryExecutor,
  notifications: readonly NewNotification[],
): Promise<void> {
  if (notifications.length === 0) return;
  await trx
    .insertInto('notification_outbox')
    .values(
      notifications.map((n) => ({
        tenant_id: n.tenant_id,
        event_type: n.event_type,
        ...(n.occurred_at ? { created_at: n.occurred_at } : {}),
        payload: JSON.stringify(notificationPayload(n)),
      })),
    )
    .execute();
}

/** The stored payload of a notification: what its channels are sent, besides the row's own columns. */
export function notificationPayload(n: Pick<NewNotification, 'subject' | 'summary' | 'details'>) {
  return {
    subject: n.subject,
    summary: n.summary,
    console_path: consolePathOf(n.subject),
    details: n.details ?? {},
  };
}

/** The event a channel receives for an outbox row. */
export function toNotificationEvent(row: {
  event_id: string;
  event_type: string;
  tenant_id: string;
  created_at: Date;
  payload: Record<string, unknown>;
}): NotificationEvent {
  const payload = row.payload as Pick<NotificationEvent, 'subject' | 'summary' | 'console_path' | 'details'>;
  return {
    event_id: row.event_id,
    event_type: row.event_type as NotificationEventType,
    tenant_id: row.tenant_id,
    occurred_at: row.created_at.toISOString(),
    subject: payload.subject,
    summary: payload.summary,
    console_path: payload.console_path,
    details: payload.details,
  };
}

/**
 * One fan-out pass, in one transaction: takes up to `limit` undispatched outbox rows (`FOR UPDATE SKIP LOCKED`,
 * so replicas share the work and never wait on each other), creates a pending delivery for every enabled
 * channel of the row's tenant subscribed to its event type, and marks the rows dispatched. Idempotent (one
 * delivery per channel and row). Returns the new deliveries' ids, for the caller to enqueue after commit.
 */
export async function dispatchNotifications(
  db: QueryExecutor,
  options: { limit?: number } = {},
): Promise<string[]> {
  return db.transaction().execute(async (trx) => {
    const rows = await trx
      .selectFrom('notification_outbox')
      .select(['outbox_id', 'tenant_id', 'event_type'])
      .where('dispatched_at', 'is', null)
      .orderBy('outbox_id')
      .limit(options.limit ?? 200)
      .forUpdate()
      .skipLocked()
      .execute();
    if (rows.length === 0) return [];
    const channels = await trx
      .selectFrom('notification_channels')
      .select(['channel_id', 'tenant_id', 'events'])
      .where('tenant_id', 'in', [...new Set(rows.map((r) => r.tenant_id))])
      .where('enabled', '=', true)
      .execute();
    const deliveries = rows.flatMap((row) =>
      channels
        .filter((c) => c.tenant_id === row.tenant_id && c.events.includes(row.event_type))
        .map((c) => ({
          tenant_id: row.tenant_id,
          channel_id: c.channel_id,
          outbox_id: row.outbox_id,
          event_type: row.event_type,
        })),
    );
    const created =
      deliveries.length === 0
        ? []
        : await trx
            .insertInto('notification_deliveries')
            .values(deliveries)
            .onConflict((oc) => oc.columns(['channel_id', 'outbox_id']).doNothing())
            .returning('delivery_id')
            .execute();
    await trx
      .updateTable('notification_outbox')
      .set({ dispatched_at: new Date() })
      .where(
        'outbox_id',
        'in',
        rows.map((r) => r.outbox_id),
      )
      .execute();
    return created.map((d) => d.delivery_id);
  });
}
