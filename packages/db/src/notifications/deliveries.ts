/**
 * The delivery log: one row per channel and notification, with its status, attempts and last error. The
 * notifier's worker reads a delivery with its channel's secrets (`loadDeliveryForSend`) and records each
 * attempt; the API reads the log (`listDeliveries`), which never holds a URL or a secret.
 */
import type { DeliveryStatus, NotificationDeliveryView, NotificationEvent } from '@warden/domain';
import { encodeCursor } from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import type { NotificationChannelRow, NotificationDeliveryRow } from './tables.js';
import { toNotificationEvent } from './outbox.js';

export interface DeliveryToSend {
  delivery: NotificationDeliveryRow;
  channel: NotificationChannelRow;
  event: NotificationEvent;
}

/** A delivery with its channel (secrets included: for the sender only) and its event; undefined when gone. */
export async function loadDeliveryForSend(
  db: QueryExecutor,
  deliveryId: string,
): Promise<DeliveryToSend | undefined> {
  const delivery = await db
    .selectFrom('notification_deliveries')
    .selectAll()
    .where('delivery_id', '=', deliveryId)
    .executeTakeFirst();
  if (!delivery) return undefined;
  const channel = await db
    .selectFrom('notification_channels')
    .selectAll()
    .where('channel_id', '=', delivery.channel_id)
    .executeTakeFirst();
  const outbox = await db
    .selectFrom('notification_outbox')
    .select(['event_id', 'event_type', 'tenant_id', 'created_at', 'payload'])
    .where('outbox_id', '=', delivery.outbox_id)
    .executeTakeFirst();
  if (!channel || !outbox) return undefined;
  return { delivery, channel, event: toNotificationEvent(outbox) };
}

export type DeliveryAttemptOutcome =
  | { status: 'delivered'; statusCode: number | null }
  /** Failed, will be tried again. */
  | { status: 'pending'; statusCode: number | null; error: string }
  /** Failed for the last time: gave up. */
  | { status: 'failed'; statusCode: number | null; error: string }
  /** Not sent: the channel was disabled or deleted meanwhile. */
  | { status: 'cancelled'; error: string };

/** Records one attempt on a pending delivery; a delivery already settled is left as it is (a duplicate job). */
export async function recordDeliveryAttempt(
  db: QueryExecutor,
  deliveryId: string,
  outcome: DeliveryAttemptOutcome,
  now = new Date(),
): Promise<boolean> {
  const result = await db
    .updateTable('notification_deliveries')
    .set((eb) => ({
      status: outcome.status,
      attempts: outcome.status === 'cancelled' ? eb.ref('attempts') : eb('attempts', '+', 1),
      last_error: outcome.status === 'delivered' ? null : outcome.error.slice(0, 1000),
      last_status_code: outcome.status === 'cancelled' ? null : outcome.statusCode,
      updated_at: now,
      ...(outcome.status === 'delivered' ? { delivered_at: now } : {}),
    }))
    .where('delivery_id', '=', deliveryId)
    .where('status', '=', 'pending')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Marks deliveries as handed to the queue now (the notifier re-enqueues pending ones left unsent too long). */
export async function markDeliveriesEnqueued(
  db: QueryExecutor,
  deliveryIds: readonly string[],
): Promise<void> {
  if (deliveryIds.length === 0) return;
  await db
    .updateTable('notification_deliveries')
    .set({ last_enqueued_at: new Date() })
    .where('delivery_id', 'in', [...deliveryIds])
    .execute();
}

/** Pending deliveries never enqueued, or last enqueued before `enqueuedBefore` (their job may be lost). */
export async function findStrandedDeliveries(
  db: QueryExecutor,
  options: { enqueuedBefore: Date; limit?: number },
): Promise<string[]> {
  const rows = await db
    .selectFrom('notification_deliveries')
    .select('delivery_id')
    .where('status', '=', 'pending')
    .where((eb) =>
      eb.or([eb('last_enqueued_at', 'is', null), eb('last_enqueued_at', '<', options.enqueuedBefore)]),
    )
    .orderBy('created_at')
    .limit(options.limit ?? 200)
    .execute();
  return rows.map((r) => r.delivery_id);
}

function toDeliveryView(row: NotificationDeliveryRow & { event_id: string }): NotificationDeliveryView {
  return {
    delivery_id: row.delivery_id,
    channel_id: row.channel_id,
    event_id: row.event_id,
    event_type: row.event_type as NotificationDeliveryView['event_type'],
    status: row.status,
    attempts: row.attempts,
    last_error: row.last_error,
    last_status_code: row.last_status_code,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    delivered_at: row.delivered_at?.toISOString() ?? null,
  };
}

/**
 * The tenant's delivery log, newest notification first, keyset-paginated on (outbox id, delivery id) — exact
 * integers and uuids, where a timestamp cursor would lose Postgres's microseconds; optionally one channel's or
 * one status's.
 */
export async function listDeliveries(
  db: QueryExecutor,
  tenantId: string,
  options: {
    limit: number;
    channelId?: string;
    status?: DeliveryStatus;
    before?: { outbox_id: string; delivery_id: string };
  },
): Promise<{ items: NotificationDeliveryView[]; next_cursor: string | null }> {
  let query = db
    .selectFrom('notification_deliveries as d')
    .innerJoin('notification_outbox as o', 'o.outbox_id', 'd.outbox_id')
    .selectAll('d')
    .select('o.event_id')
    .where('d.tenant_id', '=', tenantId)
    .orderBy('d.outbox_id', 'desc')
    .orderBy('d.delivery_id', 'desc')
    .limit(options.limit + 1);
  if (options.channelId) query = query.where('d.channel_id', '=', options.channelId);
  if (options.status) query = query.where('d.status', '=', options.status);
  if (options.before) {
    const { outbox_id, delivery_id } = options.before;
    query = query.where((eb) =>
      eb.or([
        eb('d.outbox_id', '<', outbox_id),
        eb.and([eb('d.outbox_id', '=', outbox_id), eb('d.delivery_id', '<', delivery_id)]),
      ]),
    );
  }
  const rows = await query.execute();
  const page = rows.slice(0, options.limit);
  const last = page[page.length - 1];
  return {
    items: page.map(toDeliveryView),
    next_cursor:
      rows.length > options.limit && last
        ? encodeCursor({ outbox_id: last.outbox_id, delivery_id: last.delivery_id })
        : null,
  };
}
