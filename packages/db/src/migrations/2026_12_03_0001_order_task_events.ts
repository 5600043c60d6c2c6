import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.
// Per-task ordering of inbox events, and resource holders under the task state machine.

export async function up(db: Kysely<any>): Promise<void> {
  // A decision takes over a task's earlier undecided events so they apply in inbox order: find them fast.
  await sql`create index supervisor_inbox_task_unfinished_idx on supervisor_inbox (tenant_id, task_id, inbox_id)
            where status in ('pending','processing','failed')`.execute(db);
  // A retrying task keeps its exclusive resources, like a running one.
  await sql`drop index if exists tasks_active_resources_idx`.execute(db);
  await sql`create index tasks_active_resources_idx on tasks (tenant_id)
            where status in ('running','verifying','retrying','paused') and metadata ? 'exclusive_resources'`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists supervisor_inbox_task_unfinished_idx`.execute(db);
  await sql`drop index if exists tasks_active_resources_idx`.execute(db);
  await sql`create index tasks_active_resources_idx on tasks (tenant_id) where status in ('running','verifying','paused') and metadata ? 'exclusive_resources'`.execute(
    db,
  );
}
