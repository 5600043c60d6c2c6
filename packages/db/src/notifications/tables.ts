/** Kysely types of the notification tables (migration 2026_12_04_0005); `Database` in database.ts lists them. */
import type { ColumnType, Generated, Selectable } from 'kysely';
import type { DeliveryStatus, NotificationChannelKind } from '@warden/domain';
import type { Json, NullableTimestamp, Timestamp } from '../column-types.js';

export interface NotificationChannelsTable {
  channel_id: Generated<string>;
  tenant_id: string;
  name: string;
  kind: NotificationChannelKind;
  /** A secret (a Slack webhook URL is one): read only by the delivery worker, never shown. */
  url: string;
  /** A secret: the HMAC key of a webhook's signature. Null for Slack. */
  signing_secret: string | null;
  events: ColumnType<string[], string[], string[]>;
  enabled: ColumnType<boolean, boolean | undefined, boolean>;
  created_by: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface NotificationOutboxTable {
  outbox_id: Generated<string>;
  event_id: Generated<string>;
  tenant_id: string;
  event_type: string;
  payload: Json<Record<string, unknown>>;
  created_at: Timestamp;
  dispatched_at: NullableTimestamp;
}

export interface NotificationDeliveriesTable {
  delivery_id: Generated<string>;
  tenant_id: string;
  channel_id: string;
  outbox_id: string;
  event_type: string;
  status: ColumnType<DeliveryStatus, DeliveryStatus | undefined, DeliveryStatus>;
  attempts: ColumnType<number, number | undefined, number>;
  last_error: string | null;
  last_status_code: number | null;
  last_enqueued_at: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
  delivered_at: NullableTimestamp;
}

export type NotificationChannelRow = Selectable<NotificationChannelsTable>;
export type NotificationDeliveryRow = Selectable<NotificationDeliveriesTable>;
