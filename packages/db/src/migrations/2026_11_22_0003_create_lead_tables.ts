import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.
// The lead miner's tables (findings by fingerprint, the scan log) and the two indexes its scans read through.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('lead_scans')
    .addColumn('scan_id', 'uuid', (col) => col.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('window_kind', 'text', (col) => col.notNull())
    .addColumn('window_start', 'timestamptz')
    .addColumn('window_end', 'timestamptz')
    .addColumn('status', 'text', (col) =>
      col.notNull().check(sql`status in ('queued','running','completed','failed','skipped')`),
    )
    .addColumn('trigger', 'text', (col) =>
      col.notNull().check(sql`trigger in ('cli','api','schedule','queue')`),
    )
    .addColumn('dry_run', 'boolean', (col) => col.notNull().defaultTo(false))
    .addColumn('forced', 'boolean', (col) => col.notNull().defaultTo(false))
    .addColumn('requested_by', 'text')
    .addColumn('rules_version', 'text')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('started_at', 'timestamptz')
    .addColumn('completed_at', 'timestamptz')
    // Touched as the scan moves on; a `running` row whose heartbeat stopped belongs to a process that died.
    .addColumn('heartbeat_at', 'timestamptz')
    .addColumn('stats', 'jsonb', (col) => col.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('warnings', 'jsonb', (col) => col.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('error', 'text')
    .execute();
  await sql`create index lead_scans_tenant_created_idx on lead_scans (tenant_id, created_at desc, scan_id desc)`.execute(
    db,
  );
  await sql`create index lead_scans_unfinished_idx on lead_scans (tenant_id, window_kind) where status in ('queued','running')`.execute(
    db,
  );

  await db.schema
    .createTable('lead_findings')
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('fingerprint', 'text', (col) => col.notNull())
    .addColumn('code', 'text', (col) => col.notNull())
    .addColumn('severity', 'text', (col) =>
      col.notNull().check(sql`severity in ('LOW','MEDIUM','HIGH','CRITICAL')`),
    )
    .addColumn('title', 'text', (col) => col.notNull())
    .addColumn('description', 'text', (col) => col.notNull())
    .addColumn('window_kind', 'text', (col) => col.notNull())
    .addColumn('dimensions', 'jsonb', (col) => col.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('first_seen_at', 'timestamptz', (col) => col.notNull())
    .addColumn('last_seen_at', 'timestamptz', (col) => col.notNull())
    .addColumn('count', 'integer', (col) => col.notNull().defaultTo(1))
    .addColumn('evidence', 'jsonb', (col) => col.notNull())
    .addColumn('linked_task_id', 'text')
    .addColumn('status', 'text', (col) =>
      col
        .notNull()
        .defaultTo('open')
        .check(sql`status in ('open','resolved','silenced')`),
    )
    .addColumn('resolved_at', 'timestamptz')
    .addColumn('resolved_by', 'text')
    .addColumn('silenced_until', 'timestamptz')
    .addColumn('silenced_by', 'text')
    .addColumn('note', 'text')
    .addColumn('last_scan_id', 'uuid')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('lead_findings_pkey', ['tenant_id', 'fingerprint'])
    // A silence always ends: a silenced row without an end would mute its finding forever.
    .addCheckConstraint('lead_findings_silence_ends', sql`status <> 'silenced' or silenced_until is not null`)
    .execute();
  await sql`create index lead_findings_tenant_seen_idx on lead_findings (tenant_id, last_seen_at desc, fingerprint desc)`.execute(
    db,
  );
  await sql`create index lead_findings_unlinked_idx on lead_findings (tenant_id) where linked_task_id is null`.execute(
    db,
  );

  // A scan reads a tenant's decisions by event time. `if not exists`, so an installation with a large
  // task_audits can build both indexes beforehand with CREATE INDEX CONCURRENTLY (docs/lead-miner.md) instead
  // of blocking the supervisor's writes while this migration builds them.
  // Every decision, narrow enough for an index-only count of the window and its lags.
  await sql`create index if not exists task_audits_lead_window_idx on task_audits (tenant_id, source_event_ts)
            include (processed_at, event_type) where decision_id is not null`.execute(db);
  // The few decisions the rules look into: anything but a plain ALLOW, and any decision that carries findings.
  await sql`create index if not exists task_audits_lead_notable_idx on task_audits (tenant_id, source_event_ts)
            where decision_id is not null and (event_type <> 'SUPERVISOR_ALLOWED' or payload -> 'findings' <> '[]'::jsonb)`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists task_audits_lead_notable_idx`.execute(db);
  await sql`drop index if exists task_audits_lead_window_idx`.execute(db);
  await db.schema.dropTable('lead_findings').ifExists().execute();
  await db.schema.dropTable('lead_scans').ifExists().execute();
}
