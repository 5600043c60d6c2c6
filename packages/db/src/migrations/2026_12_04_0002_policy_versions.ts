import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.
// Versioned policies per tenant and kind: pushed drafts with their diff, one active version, the history.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table policy_versions (
    tenant_id text not null references tenants (tenant_id),
    kind text not null check (kind in ('supervisor', 'writegate', 'lead-rules')),
    version integer not null check (version >= 1),
    status text not null check (status in ('draft', 'active', 'superseded', 'discarded')),
    file_version text not null,
    source text not null,
    sha256 text not null,
    note text,
    base_version integer,
    diff text not null default '',
    pushed_by text not null,
    pushed_by_owner text not null,
    pushed_at timestamptz not null default now(),
    activated_by text,
    activated_by_owner text,
    activated_at timestamptz,
    primary key (tenant_id, kind, version),
    -- an active or superseded version was approved by someone
    check (status in ('draft', 'discarded') or activated_at is not null)
  )`.execute(db);
  // At most one active version per tenant and kind; also how the services find it.
  await sql`create unique index policy_versions_active_idx on policy_versions (tenant_id, kind)
            where status = 'active'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists policy_versions`.execute(db);
}
