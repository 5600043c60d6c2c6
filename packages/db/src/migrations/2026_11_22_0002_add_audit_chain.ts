import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.
// The audit hash chain (one chain per tenant) and the poller's bookkeeping.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('task_audits')
    .addColumn('chain_seq', 'bigint')
    .addColumn('prev_hash', 'text')
    .addColumn('row_hash', 'text')
    .execute();
  await db.schema
    .createIndex('task_audits_chain_key')
    .unique()
    .on('task_audits')
    .columns(['tenant_id', 'chain_seq'])
    .execute();

  // One row per tenant: the chain's head. Writers lock it, so a tenant's chain grows one transaction at a time.
  await db.schema
    .createTable('audit_chain_heads')
    .addColumn('tenant_id', 'text', (col) => col.primaryKey())
    .addColumn('chain_seq', 'bigint', (col) => col.notNull())
    .addColumn('row_hash', 'text', (col) => col.notNull())
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();

  // When the poller last re-enqueued a row, so a slow backlog is not flooded with duplicate jobs.
  await db.schema.alterTable('supervisor_inbox').addColumn('last_enqueued_at', 'timestamptz').execute();
  await sql`create index supervisor_inbox_completed_idx on supervisor_inbox (processed_at) where status = 'completed'`.execute(
    db,
  );
  await sql`create index tasks_active_resources_idx on tasks (tenant_id) where status in ('running','verifying','paused') and metadata ? 'exclusive_resources'`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists tasks_active_resources_idx`.execute(db);
  await sql`drop index if exists supervisor_inbox_completed_idx`.execute(db);
  await db.schema.alterTable('supervisor_inbox').dropColumn('last_enqueued_at').execute();
  await db.schema.dropTable('audit_chain_heads').execute();
  await db.schema.dropIndex('task_audits_chain_key').execute();
  await db.schema
    .alterTable('task_audits')
    .dropColumn('chain_seq')
    .dropColumn('prev_hash')
    .dropColumn('row_hash')
    .execute();
}
