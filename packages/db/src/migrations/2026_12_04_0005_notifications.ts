import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.
// Notifications: a tenant's channels, the outbox every state change writes its notification to (in the same
// transaction), and the delivery log (one row per channel and notification: status, attempts, last error).

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('notification_channels')
    .addColumn('channel_id', 'uuid', (col) => col.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('name', 'text', (col) => col.notNull())
    .addColumn('kind', 'text', (col) => col.notNull().check(sql`kind in ('webhook','slack')`))
    // Secrets: a Slack webhook URL is one, a signing secret is one. Never selected by the API's views.
    .addColumn('url', 'text', (col) => col.notNull())
    .addColumn('signing_secret', 'text')
    .addColumn('events', sql`text[]`, (col) => col.notNull())
    .addColumn('enabled', 'boolean', (col) => col.notNull().defaultTo(true))
    .addColumn('created_by', 'text', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('notification_channels_tenant_name_key', ['tenant_id', 'name'])
    .addCheckConstraint(
      'notification_channels_webhook_secret_check',
      sql`kind <> 'webhook' or signing_secret is not null`,
    )
    .execute();

  await db.schema
    .createTable('notification_outbox')
    .addColumn('outbox_id', 'bigserial', (col) => col.primaryKey())
    .addColumn('event_id', 'uuid', (col) =>
      col
        .notNull()
        .unique()
        .defaultTo(sql`gen_random_uuid()`),
    )
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('event_type', 'text', (col) => col.notNull())
    .addColumn('payload', 'jsonb', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('dispatched_at', 'timestamptz')
    .execute();
  await sql`create index notification_outbox_undispatched_idx on notification_outbox (outbox_id)
             where dispatched_at is null`.execute(db);

  await db.schema
    .createTable('notification_deliveries')
    .addColumn('delivery_id', 'uuid', (col) => col.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('channel_id', 'uuid', (col) =>
      col.notNull().references('notification_channels.channel_id').onDelete('cascade'),
    )
    .addColumn('outbox_id', 'bigint', (col) => col.notNull().references('notification_outbox.outbox_id'))
    .addColumn('event_type', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) =>
      col
        .notNull()
        .defaultTo('pending')
        .check(sql`status in ('pending','delivered','failed','cancelled')`),
    )
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('last_error', 'text')
    .addColumn('last_status_code', 'integer')
    .addColumn('last_enqueued_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('delivered_at', 'timestamptz')
    .addUniqueConstraint('notification_deliveries_channel_outbox_key', ['channel_id', 'outbox_id'])
    .execute();
  await sql`create index notification_deliveries_log_idx
             on notification_deliveries (tenant_id, created_at desc, delivery_id desc)`.execute(db);
  await sql`create index notification_deliveries_pending_idx on notification_deliveries (last_enqueued_at)
             where status = 'pending'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('notification_deliveries').ifExists().execute();
  await db.schema.dropTable('notification_outbox').ifExists().execute();
  await db.schema.dropTable('notification_channels').ifExists().execute();
}
