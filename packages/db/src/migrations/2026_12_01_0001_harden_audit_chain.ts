import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.
// Hardens the audit hash chain (security issue, part 6):
// - every row has a chain position and hashes: NOT NULL, and one row per (tenant, position) as a constraint;
// - `hash_version` says how a row was hashed. Rows already there keep version 1 (the old format, which did
//   not cover audit_id and created_at): re-hashing them would bless whatever was in them, since nothing can
//   tell that they were untouched. appendAudits writes version 2 (every column) from now on;
// - `audit_anchors`: signed checkpoints, HMACs made with a key the database never holds.

export async function up(db: Kysely<any>): Promise<void> {
  // Rows without a position (or hashes) were never part of any chain: appendAudits always set them, so they
  // were written by hand or forged. They cannot be chained after the fact (their hash would vouch for content
  // nobody checked), and they must stop being served as audit rows, so they are moved aside, whole, for a
  // person to review. `warden audit verify` fails while this table holds rows.
  await sql`create table task_audits_unchained (like task_audits)`.execute(db);
  await sql`alter table task_audits_unchained add column quarantined_at timestamptz not null default now()`.execute(
    db,
  );
  await sql`
    with moved as (
      delete from task_audits where chain_seq is null or prev_hash is null or row_hash is null returning *
    )
    insert into task_audits_unchained select moved.*, now() from moved`.execute(db);

  // Existing rows: version 1. No default afterwards, so every writer says which format it hashed.
  await sql`alter table task_audits add column hash_version smallint not null default 1`.execute(db);
  await sql`alter table task_audits alter column hash_version drop default`.execute(db);
  await sql`alter table task_audits add constraint task_audits_hash_version_check check (hash_version in (1, 2))`.execute(
    db,
  );

  await sql`
    alter table task_audits
      alter column chain_seq set not null,
      alter column prev_hash set not null,
      alter column row_hash set not null,
      add constraint task_audits_chain_seq_check check (chain_seq >= 1)`.execute(db);
  // The unique index becomes a named constraint (same index, no rebuild): one row per (tenant, position).
  await sql`alter table task_audits add constraint task_audits_chain_key unique using index task_audits_chain_key`.execute(
    db,
  );
  await sql`alter table audit_chain_heads add constraint audit_chain_heads_chain_seq_check check (chain_seq >= 0)`.execute(
    db,
  );

  await db.schema
    .createTable('audit_anchors')
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('chain_seq', 'bigint', (col) => col.notNull().check(sql`chain_seq >= 1`))
    .addColumn('row_hash', 'text', (col) => col.notNull())
    .addColumn('key_id', 'text', (col) => col.notNull())
    .addColumn('signature', 'text', (col) => col.notNull())
    .addColumn('anchored_at', 'timestamptz', (col) => col.notNull())
    .addPrimaryKeyConstraint('audit_anchors_pkey', ['tenant_id', 'chain_seq'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('audit_anchors').execute();
  await sql`alter table audit_chain_heads drop constraint audit_chain_heads_chain_seq_check`.execute(db);
  await sql`alter table task_audits drop constraint task_audits_chain_key`.execute(db);
  await sql`create unique index task_audits_chain_key on task_audits (tenant_id, chain_seq)`.execute(db);
  await sql`
    alter table task_audits
      drop constraint task_audits_chain_seq_check,
      alter column chain_seq drop not null,
      alter column prev_hash drop not null,
      alter column row_hash drop not null`.execute(db);
  await sql`alter table task_audits drop column hash_version`.execute(db);
  await sql`
    insert into task_audits (audit_id, tenant_id, task_id, event_type, level, decision_id, event_id, source_event_ts,
                             processed_at, payload, created_at, chain_seq, prev_hash, row_hash)
    select audit_id, tenant_id, task_id, event_type, level, decision_id, event_id, source_event_ts,
           processed_at, payload, created_at, chain_seq, prev_hash, row_hash
      from task_audits_unchained`.execute(db);
  await db.schema.dropTable('task_audits_unchained').execute();
}
