import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.
// The executor (docs/executor.md): change sets with their verdict and approval, the steps they went through, the journal
// that makes an apply recoverable after a crash, idempotency records, and the per-workspace fencing tokens.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('changesets')
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('changeset_id', 'text', (col) => col.notNull())
    .addColumn('plan_id', 'text', (col) => col.notNull())
    .addColumn('workspace', 'text', (col) => col.notNull())
    .addColumn('generated_by', 'text', (col) => col.notNull())
    .addColumn('checksum', 'text', (col) => col.notNull())
    .addColumn('plan_hash', 'text', (col) => col.notNull())
    .addColumn('idempotency_key', 'text', (col) => col.notNull())
    .addColumn('fingerprint', 'text', (col) => col.notNull())
    // JSON as text, not jsonb: the checksum is recomputed from exactly what was stored (jsonb would reorder keys,
    // drop duplicates and refuse a NUL escape that a hostile path may carry).
    .addColumn('plan_json', 'text', (col) => col.notNull())
    .addColumn('changes_json', 'text', (col) => col.notNull())
    .addColumn('verdict', 'text', (col) =>
      col.notNull().check(sql`verdict in ('ALLOW','NEED_APPROVAL','DENY')`),
    )
    .addColumn('risk_effective', 'text', (col) => col.notNull())
    .addColumn('verdict_detail', 'jsonb', (col) => col.notNull())
    .addColumn('policy_hash', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) =>
      col
        .notNull()
        .defaultTo('pending')
        .check(
          sql`status in ('pending','validating','backing_up','applying','verifying','health_checking','completed','failed','rolled_back','rollback_failed','rejected','denied')`,
        ),
    )
    .addColumn('approval_state', 'text', (col) =>
      col.notNull().check(sql`approval_state in ('not_required','pending','approved','rejected')`),
    )
    .addColumn('approval_by', 'text')
    .addColumn('approval_at', 'timestamptz')
    .addColumn('approval_checksum', 'text')
    .addColumn('approval_plan_hash', 'text')
    .addColumn('approval_note', 'text')
    .addColumn('submitted_by', 'text', (col) => col.notNull())
    .addColumn('submitted_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('queued_at', 'timestamptz')
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('started_at', 'timestamptz')
    .addColumn('finished_at', 'timestamptz')
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    .addColumn('result', 'jsonb')
    // The fencing token of the execution attempt that owns the change set now; a stale attempt's updates miss.
    .addColumn('fence_token', 'bigint')
    .addPrimaryKeyConstraint('changesets_pkey', ['tenant_id', 'changeset_id'])
    .execute();
  await db.schema
    .createIndex('changesets_idempotency_idx')
    .on('changesets')
    .columns(['tenant_id', 'idempotency_key'])
    .execute();
  await db.schema
    .createIndex('changesets_submitted_idx')
    .on('changesets')
    .columns(['tenant_id', 'submitted_at', 'changeset_id'])
    .execute();
  // The executor's poller looks for executable change sets whose job may have been lost.
  await sql`create index changesets_queueable_idx on changesets (queued_at)
            where status = 'pending' and approval_state in ('not_required','approved') and verdict <> 'DENY'`.execute(
    db,
  );
  // …and for executions left half-way (few rows at any time; the index keeps finished ones out).
  await sql`create index changesets_executing_idx on changesets (updated_at)
            where status in ('validating','backing_up','applying','verifying','health_checking')`.execute(db);

  await db.schema
    .createTable('changeset_steps')
    .addColumn('step_id', 'bigserial', (col) => col.primaryKey())
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('changeset_id', 'text', (col) => col.notNull())
    .addColumn('attempt', 'integer', (col) => col.notNull())
    .addColumn('step', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) =>
      col.notNull().check(sql`status in ('ok','failed','skipped','waiting')`),
    )
    .addColumn('message', 'text', (col) => col.notNull())
    .addColumn('detail', 'jsonb', (col) => col.notNull())
    .addColumn('duration_ms', 'double precision')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('changeset_steps_changeset_idx')
    .on('changeset_steps')
    .columns(['tenant_id', 'changeset_id', 'step_id'])
    .execute();

  await db.schema
    .createTable('changeset_journals')
    .addColumn('journal_id', 'bigserial', (col) => col.primaryKey())
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('changeset_id', 'text', (col) => col.notNull())
    .addColumn('attempt', 'integer', (col) => col.notNull())
    .addColumn('workspace', 'text', (col) => col.notNull())
    .addColumn('phase', 'text', (col) =>
      col
        .notNull()
        .check(
          sql`phase in ('prepared','applying','applied','verifying','rolling_back','committed','rolled_back','rollback_failed')`,
        ),
    )
    .addColumn('fence_token', 'bigint', (col) => col.notNull())
    .addColumn('executor_id', 'text', (col) => col.notNull())
    .addColumn('created_dirs', 'jsonb', (col) => col.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('lease_expires_at', 'timestamptz', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addUniqueConstraint('changeset_journals_attempt_key', ['tenant_id', 'changeset_id', 'attempt'])
    .execute();
  await sql`create index changeset_journals_active_idx on changeset_journals (workspace, lease_expires_at)
            where phase in ('prepared','applying','applied','verifying','rolling_back')`.execute(db);

  await db.schema
    .createTable('changeset_journal_entries')
    .addColumn('journal_id', 'bigint', (col) =>
      col.notNull().references('changeset_journals.journal_id').onDelete('cascade'),
    )
    .addColumn('seq', 'integer', (col) => col.notNull())
    .addColumn('path', 'text', (col) => col.notNull())
    .addColumn('operation', 'text', (col) =>
      col.notNull().check(sql`operation in ('create','update','delete')`),
    )
    .addColumn('pre_exists', 'boolean', (col) => col.notNull())
    .addColumn('pre_hash', 'text')
    .addColumn('pre_mode', 'integer')
    // The file's bytes before the change: the backup a rollback restores.
    .addColumn('backup', 'bytea')
    .addColumn('new_hash', 'text')
    .addPrimaryKeyConstraint('changeset_journal_entries_pkey', ['journal_id', 'seq'])
    .execute();

  await db.schema
    .createTable('executor_idempotency')
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('idempotency_key', 'text', (col) => col.notNull())
    .addColumn('fingerprint', 'text', (col) => col.notNull())
    .addColumn('changeset_id', 'text', (col) => col.notNull())
    .addColumn('state', 'text', (col) =>
      col.notNull().check(sql`state in ('in_progress','completed','failed')`),
    )
    .addColumn('result', 'jsonb')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz', (col) => col.notNull())
    .addPrimaryKeyConstraint('executor_idempotency_pkey', ['tenant_id', 'idempotency_key'])
    .execute();
  await db.schema
    .createIndex('executor_idempotency_expiry_idx')
    .on('executor_idempotency')
    .column('expires_at')
    .execute();

  // One row per workspace: the fencing token grows by one with every lock holder; writes check it.
  await db.schema
    .createTable('workspace_fences')
    .addColumn('workspace', 'text', (col) => col.primaryKey())
    .addColumn('token', 'bigint', (col) => col.notNull())
    .addColumn('holder', 'text', (col) => col.notNull())
    .addColumn('tenant_id', 'text')
    .addColumn('changeset_id', 'text')
    .addColumn('acquired_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'workspace_fences',
    'executor_idempotency',
    'changeset_journal_entries',
    'changeset_journals',
    'changeset_steps',
    'changesets',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
