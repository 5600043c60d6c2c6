import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.
// Scheduler hardening: a migration's comparison window restarts when the trigger enters shadow or rolls back,
// and the breaker's half-open probe has a deadline.

export async function up(db: Kysely<any>): Promise<void> {
  // Shadow consistency and the agent-failure red line count only runs governed after this (null: all of them).
  await sql`alter table cron_triggers add column migration_window_started_at timestamptz`.execute(db);
  // When the half-open probe started: past its deadline the next fire probes again (a lost probe never sticks).
  await sql`alter table cron_triggers add column breaker_probe_started_at timestamptz`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table cron_triggers drop column if exists migration_window_started_at`.execute(db);
  await sql`alter table cron_triggers drop column if exists breaker_probe_started_at`.execute(db);
}
