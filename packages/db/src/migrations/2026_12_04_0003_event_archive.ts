import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.
// The event archive: every decided event as received, with the task context its policy saw, kept for a
// retention window in daily partitions (dropping a day is instant) so any policy can be replayed over it.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table event_archive (
    tenant_id text not null,
    event_id text not null,
    task_id text not null,
    event_type text not null,
    -- the original per-task order (inbox order); a replay decides a task's events in this order
    inbox_id bigint not null,
    source text not null,
    trace_id text,
    event_ts timestamptz not null,
    received_at timestamptz not null,
    payload jsonb not null,
    -- what the policy saw: the task (status, metadata, retry_count) before this event, and the tenant's tasks
    -- holding exclusive resources (only when the event declares any)
    task_context jsonb not null,
    running_tasks jsonb not null default '[]',
    decision_id text not null,
    decision_type text not null,
    policy text not null,
    policy_version text not null,
    finding_codes text[] not null default '{}',
    would_have text,
    -- the decision's commit day: the partition key
    decided_at timestamptz not null,
    primary key (decided_at, tenant_id, event_id)
  ) partition by range (decided_at)`.execute(db);
  // Rows for a day whose partition was not created in time land here rather than fail a decision; the
  // supervisor's archive maintenance creates days ahead, so it stays empty in practice.
  await sql`create table event_archive_default partition of event_archive default`.execute(db);
  // Replays read a window task by task, each task's events in inbox order.
  await sql`create index event_archive_replay_idx on event_archive (tenant_id, task_id, inbox_id)`.execute(
    db,
  );
  // Today and the next days, so a fresh installation archives before the maintenance first runs.
  for (let day = -1; day <= 3; day++) {
    // Days are UTC days, whatever the session's time zone.
    const name = await sql<{ name: string; start: string; end: string }>`
      select 'event_archive_p' || to_char(d, 'YYYYMMDD') as name,
             d::text || ' 00:00:00+00' as start, (d + 1)::text || ' 00:00:00+00' as end
        from (select ((now() at time zone 'UTC')::date + ${day}::int) as d) x`.execute(db);
    const row = name.rows[0]!;
    await sql`create table ${sql.id(row.name)} partition of event_archive
              for values from (${sql.lit(row.start)}) to (${sql.lit(row.end)})`.execute(db);
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table if exists event_archive`.execute(db);
}
