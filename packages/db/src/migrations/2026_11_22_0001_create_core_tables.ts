import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('tenants')
    .addColumn('tenant_id', 'text', (col) => col.primaryKey())
    .addColumn('name', 'text', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('key_id', 'uuid', (col) => col.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('tenant_id', 'text', (col) => col.notNull().references('tenants.tenant_id'))
    .addColumn('name', 'text', (col) => col.notNull())
    .addColumn('key_hash', 'text', (col) => col.notNull().unique())
    .addColumn('key_prefix', 'text', (col) => col.notNull())
    .addColumn('scopes', sql`text[]`, (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('last_used_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .execute();

  await db.schema
    .createTable('tasks')
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('task_id', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) => col.notNull())
    .addColumn('metadata', 'jsonb', (col) => col.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('retry_count', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('tasks_pkey', ['tenant_id', 'task_id'])
    .execute();

  await db.schema
    .createTable('supervisor_inbox')
    .addColumn('inbox_id', 'bigserial', (col) => col.primaryKey())
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('event_id', 'text', (col) => col.notNull())
    .addColumn('task_id', 'text', (col) => col.notNull())
    .addColumn('event_type', 'text', (col) => col.notNull())
    .addColumn('source', 'text', (col) => col.notNull())
    .addColumn('payload', 'jsonb', (col) => col.notNull())
    .addColumn('trace_id', 'text')
    .addColumn('event_ts', 'timestamptz', (col) => col.notNull())
    .addColumn('received_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('status', 'text', (col) =>
      col
        .notNull()
        .defaultTo('pending')
        .check(sql`status in ('pending','processing','completed','failed','dead')`),
    )
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('claim_generation', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('claimed_at', 'timestamptz')
    .addColumn('claim_expires_at', 'timestamptz')
    .addColumn('next_attempt_at', 'timestamptz')
    .addColumn('processed_at', 'timestamptz')
    .addColumn('error', 'text')
    .addUniqueConstraint('supervisor_inbox_tenant_event_key', ['tenant_id', 'event_id'])
    .execute();
  // The poller scans unfinished rows by age; completed rows (the vast majority) stay out of this index.
  await sql`create index supervisor_inbox_unfinished_idx on supervisor_inbox (status, received_at)
            where status in ('pending','processing','failed')`.execute(db);

  await db.schema
    .createTable('decisions')
    .addColumn('decision_id', 'text', (col) => col.primaryKey())
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('task_id', 'text', (col) => col.notNull())
    .addColumn('event_id', 'text', (col) => col.notNull())
    .addColumn('decision_type', 'text', (col) => col.notNull())
    .addColumn('reason', 'text', (col) => col.notNull())
    .addColumn('findings', 'jsonb', (col) => col.notNull())
    .addColumn('actions', 'jsonb', (col) => col.notNull())
    .addColumn('policy', 'text', (col) => col.notNull())
    .addColumn('policy_version', 'text', (col) => col.notNull())
    .addColumn('would_have', 'text')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    // One decision per event, whatever the number of deliveries.
    .addUniqueConstraint('decisions_tenant_event_key', ['tenant_id', 'event_id'])
    .execute();

  await db.schema
    .createTable('task_audits')
    .addColumn('audit_id', 'bigserial', (col) => col.primaryKey())
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('task_id', 'text', (col) => col.notNull())
    .addColumn('event_type', 'text', (col) => col.notNull())
    .addColumn('level', 'text', (col) => col.notNull().check(sql`level in ('info','warn','error')`))
    .addColumn('decision_id', 'text', (col) => col.unique())
    .addColumn('event_id', 'text')
    .addColumn('source_event_ts', 'timestamptz')
    .addColumn('processed_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('payload', 'jsonb', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('task_audits_task_idx')
    .on('task_audits')
    .columns(['tenant_id', 'task_id', 'audit_id'])
    .execute();
  await db.schema
    .createIndex('task_audits_time_idx')
    .on('task_audits')
    .columns(['tenant_id', 'created_at'])
    .execute();

  await db.schema
    .createTable('task_gates')
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('gate_id', 'text', (col) => col.notNull())
    .addColumn('task_id', 'text', (col) => col.notNull())
    .addColumn('checkpoint', 'text', (col) => col.notNull())
    .addColumn('reason', 'text', (col) => col.notNull())
    .addColumn('state', 'text', (col) =>
      col
        .notNull()
        .defaultTo('open')
        .check(sql`state in ('open','released')`),
    )
    .addColumn('decision_id', 'text')
    .addColumn('opened_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('released_at', 'timestamptz')
    .addColumn('released_by', 'text')
    .addPrimaryKeyConstraint('task_gates_pkey', ['tenant_id', 'gate_id'])
    .execute();
  await db.schema
    .createIndex('task_gates_task_idx')
    .on('task_gates')
    .columns(['tenant_id', 'task_id', 'state'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'task_gates',
    'task_audits',
    'decisions',
    'supervisor_inbox',
    'tasks',
    'api_keys',
    'tenants',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
