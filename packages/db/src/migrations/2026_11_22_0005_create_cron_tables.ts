import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.
// The scheduler: cron triggers, the execution ledger, handler calls, and migration rollback reports.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('cron_triggers')
    .addColumn('trigger_id', 'uuid', (col) => col.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('event_name', 'text', (col) => col.notNull())
    .addColumn('expression', 'text', (col) => col.notNull())
    .addColumn('timezone', 'text', (col) => col.notNull().defaultTo('UTC'))
    .addColumn('description', 'text', (col) => col.notNull().defaultTo(''))
    .addColumn('focus', 'jsonb')
    .addColumn('payload', 'jsonb', (col) => col.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('agent_target', 'jsonb')
    .addColumn('fallback_target', 'jsonb')
    .addColumn('fallback_strategy', 'text', (col) =>
      col.notNull().check(sql`fallback_strategy in ('on_failure','always','never')`),
    )
    .addColumn('migration_weight', 'double precision', (col) =>
      col.notNull().check(sql`migration_weight >= 0 and migration_weight <= 1`),
    )
    .addColumn('mode', 'text', (col) =>
      col
        .notNull()
        .defaultTo('live')
        .check(sql`mode in ('live','shadow')`),
    )
    .addColumn('cooldown_seconds', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('max_daily_runs', 'integer')
    .addColumn('max_daily_cost_usd', sql`numeric(18,6)`)
    .addColumn('max_cost_per_run_usd', sql`numeric(18,6)`)
    .addColumn('max_duration_ms', 'integer')
    .addColumn('circuit_breaker', 'jsonb', (col) => col.notNull())
    .addColumn('overlap_policy', 'text', (col) =>
      col.notNull().check(sql`overlap_policy in ('skip','buffer_one','allow')`),
    )
    .addColumn('catchup_window_seconds', 'integer', (col) => col.notNull())
    .addColumn('jitter_ms', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('retry_on_failure', 'boolean', (col) => col.notNull())
    .addColumn('max_retries', 'integer', (col) => col.notNull())
    .addColumn('retry_delay_seconds', 'integer', (col) => col.notNull())
    .addColumn('priority', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('tags', sql`text[]`, (col) => col.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('enabled', 'boolean', (col) => col.notNull().defaultTo(true))
    .addColumn('migration', 'jsonb', (col) => col.notNull())
    .addColumn('paused', 'boolean', (col) => col.notNull().defaultTo(false))
    .addColumn('pause_source', 'text', (col) => col.check(sql`pause_source in ('manual','circuit_breaker')`))
    .addColumn('pause_note', 'text')
    .addColumn('paused_at', 'timestamptz')
    .addColumn('paused_by', 'text')
    .addColumn('breaker_state', 'text', (col) =>
      col
        .notNull()
        .defaultTo('closed')
        .check(sql`breaker_state in ('closed','open','half_open')`),
    )
    .addColumn('breaker_opened_at', 'timestamptz')
    .addColumn('breaker_probe_execution_id', 'uuid')
    .addColumn('breaker_reason', 'text')
    // The breaker's window counts runs fired after this (set when it closes or a person resumes the trigger).
    .addColumn('breaker_reset_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    // Deleted triggers stay (their ledger refers to them); the name is free again.
    .addColumn('deleted_at', 'timestamptz')
    .execute();
  await sql`create unique index cron_triggers_tenant_name_key on cron_triggers (tenant_id, event_name) where deleted_at is null`.execute(
    db,
  );
  await sql`create index cron_triggers_tags_idx on cron_triggers using gin (tags)`.execute(db);

  await db.schema
    .createTable('cron_executions')
    .addColumn('execution_id', 'uuid', (col) => col.primaryKey())
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('trigger_id', 'uuid', (col) => col.notNull())
    .addColumn('event_name', 'text', (col) => col.notNull())
    .addColumn('scheduled_for', 'timestamptz', (col) => col.notNull())
    .addColumn('triggered_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    // Set once governance has run; a row without it (a manual run or backfill whose job was lost) is governed by the sweeper.
    .addColumn('governed_at', 'timestamptz')
    .addColumn('started_at', 'timestamptz')
    .addColumn('completed_at', 'timestamptz')
    .addColumn('duration_ms', 'integer')
    .addColumn('status', 'text', (col) =>
      col.notNull().check(sql`status in ('pending','running','success','failed','skipped','fallback')`),
    )
    .addColumn('decision_mode', 'text', (col) =>
      col.check(sql`decision_mode in ('agent','fallback','shadow')`),
    )
    .addColumn('manual', 'boolean', (col) => col.notNull().defaultTo(false))
    .addColumn('backfill', 'boolean', (col) => col.notNull().defaultTo(false))
    .addColumn('override_overlap', 'boolean', (col) => col.notNull().defaultTo(false))
    .addColumn('request_id', 'text')
    .addColumn('requested_by', 'text')
    .addColumn('params', 'jsonb', (col) => col.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('agent_run_id', 'text')
    .addColumn('llm_calls', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('cost_usd', sql`numeric(18,6)`)
    .addColumn('reserved_cost_usd', sql`numeric(18,6)`, (col) => col.notNull().defaultTo(0))
    .addColumn('governance_checks', 'jsonb', (col) => col.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('skip_reason', 'text')
    .addColumn('error', 'text')
    .addColumn('retry_count', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('buffered', 'boolean', (col) => col.notNull().defaultTo(false))
    .addColumn('probe', 'boolean', (col) => col.notNull().defaultTo(false))
    .addColumn('next_attempt_at', 'timestamptz')
    .addColumn('output', 'jsonb')
    .addColumn('comparison', 'jsonb')
    .addColumn('agent_outcome', 'text')
    // Exactly once: one row per fire of a trigger, however many deliveries and replicas.
    .addUniqueConstraint('cron_executions_trigger_fire_key', ['trigger_id', 'scheduled_for'])
    .execute();
  await sql`create unique index cron_executions_request_key on cron_executions (trigger_id, request_id) where request_id is not null`.execute(
    db,
  );
  await sql`create index cron_executions_in_flight_idx on cron_executions (trigger_id) where status in ('pending','running')`.execute(
    db,
  );
  await sql`create index cron_executions_pending_idx on cron_executions (next_attempt_at) where status = 'pending'`.execute(
    db,
  );
  await sql`create index cron_executions_finished_idx on cron_executions (trigger_id, scheduled_for desc) where status in ('success','failed','fallback')`.execute(
    db,
  );
  await sql`create index cron_executions_compared_idx on cron_executions (trigger_id, scheduled_for desc) where comparison is not null`.execute(
    db,
  );
  await sql`create index cron_executions_running_idx on cron_executions (tenant_id) where status = 'running'`.execute(
    db,
  );

  await db.schema
    .createTable('cron_execution_attempts')
    .addColumn('attempt_id', 'uuid', (col) => col.primaryKey())
    .addColumn('execution_id', 'uuid', (col) => col.notNull())
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('trigger_id', 'uuid', (col) => col.notNull())
    .addColumn('role', 'text', (col) => col.notNull().check(sql`role in ('agent','fallback')`))
    .addColumn('try', 'integer', (col) => col.notNull())
    .addColumn('target_kind', 'text', (col) => col.notNull().check(sql`target_kind in ('queue','http')`))
    .addColumn('target', 'text', (col) => col.notNull())
    .addColumn('status', 'text', (col) =>
      col.notNull().check(sql`status in ('running','success','failed','timeout')`),
    )
    .addColumn('started_at', 'timestamptz', (col) => col.notNull())
    .addColumn('deadline_at', 'timestamptz', (col) => col.notNull())
    .addColumn('completed_at', 'timestamptz')
    .addColumn('duration_ms', 'integer')
    .addColumn('result', 'jsonb')
    .addColumn('error_kind', 'text')
    .addColumn('error', 'text')
    .addUniqueConstraint('cron_execution_attempts_call_key', ['execution_id', 'try', 'role'])
    .execute();
  await sql`create index cron_execution_attempts_deadline_idx on cron_execution_attempts (deadline_at) where status = 'running'`.execute(
    db,
  );
  await sql`create index cron_execution_attempts_agent_idx on cron_execution_attempts (trigger_id, completed_at desc) where role = 'agent' and status <> 'running'`.execute(
    db,
  );

  await db.schema
    .createTable('cron_rollback_reports')
    .addColumn('report_id', 'uuid', (col) => col.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('trigger_id', 'uuid', (col) => col.notNull())
    .addColumn('event_name', 'text', (col) => col.notNull())
    .addColumn('red_line', 'text', (col) => col.notNull())
    .addColumn('report', 'jsonb', (col) => col.notNull())
    .addColumn('markdown', 'text', (col) => col.notNull())
    .addColumn('follow_up_task_id', 'text', (col) => col.notNull())
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('cron_rollback_reports_trigger_idx')
    .on('cron_rollback_reports')
    .columns(['trigger_id', 'created_at'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'cron_rollback_reports',
    'cron_execution_attempts',
    'cron_executions',
    'cron_triggers',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
