/**
 * A tenant's notification channels. Views never carry the URL or the signing secret (both are secrets); only
 * the notifier's worker reads them, through `loadDeliveryForSend`.
 */
import {
  ConflictError,
  type NewNotificationChannel,
  type NotificationChannelPatch,
  type NotificationChannelView,
} from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import type { NotificationChannelRow } from './tables.js';

export function toChannelView(row: NotificationChannelRow): NotificationChannelView {
  return {
    channel_id: row.channel_id,
    name: row.name,
    kind: row.kind,
    url_host: new URL(row.url).host,
    events: row.events as NotificationChannelView['events'],
    enabled: row.enabled,
    created_by: row.created_by,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

/** Stores a channel; a name the tenant already uses is a {@link ConflictError}. */
export async function createChannel(
  db: QueryExecutor,
  tenantId: string,
  channel: NewNotificationChannel,
  createdBy: string,
): Promise<NotificationChannelView> {
  const row = await db
    .insertInto('notification_channels')
    .values({
      tenant_id: tenantId,
      name: channel.name,
      kind: channel.kind,
      url: channel.url,
      signing_secret: channel.kind === 'webhook' ? channel.signing_secret : null,
      events: channel.events,
      enabled: channel.enabled,
      created_by: createdBy,
    })
    .onConflict((oc) => oc.columns(['tenant_id', 'name']).doNothing())
    .returningAll()
    .executeTakeFirst();
  if (!row)
    throw new ConflictError(`a notification channel named "${channel.name}" exists; choose another name`, [
      { path: 'name', message: 'already used' },
    ]);
  return toChannelView(row);
}

export async function listChannels(db: QueryExecutor, tenantId: string): Promise<NotificationChannelView[]> {
  const rows = await db
    .selectFrom('notification_channels')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('name')
    .execute();
  return rows.map(toChannelView);
}

/** The channel by id or name, scoped to the tenant; undefined for an unknown or foreign one. */
export async function findChannel(
  db: QueryExecutor,
  tenantId: string,
  ref: string,
): Promise<NotificationChannelRow | undefined> {
  const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(ref);
  return db
    .selectFrom('notification_channels')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where((eb) =>
      isUuid ? eb.or([eb('channel_id', '=', ref), eb('name', '=', ref)]) : eb('name', '=', ref),
    )
    .executeTakeFirst();
}

/** Applies a patch; a new signing secret on a Slack channel is refused by the caller's schema check. */
export async function updateChannel(
  db: QueryExecutor,
  row: NotificationChannelRow,
  patch: NotificationChannelPatch,
): Promise<NotificationChannelView> {
  const updated = await db
    .updateTable('notification_channels')
    .set({
      ...(patch.url !== undefined ? { url: patch.url } : {}),
      ...(patch.signing_secret !== undefined ? { signing_secret: patch.signing_secret } : {}),
      ...(patch.events !== undefined ? { events: patch.events } : {}),
      ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}),
      updated_at: new Date(),
    })
    .where('channel_id', '=', row.channel_id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return toChannelView(updated);
}

/** Deletes the channel and its delivery log. */
export async function deleteChannel(db: QueryExecutor, row: NotificationChannelRow): Promise<void> {
  await db.deleteFrom('notification_channels').where('channel_id', '=', row.channel_id).execute();
}
