import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.
// A person may deny a gate as well as release it: the gate closes as `denied` and the task is blocked.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table task_gates drop constraint if exists task_gates_state_check`.execute(db);
  await sql`alter table task_gates add constraint task_gates_state_check
              check (state in ('open','released','expired','denied'))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  // A denied gate was closed by a person, as an expired one is by the clock: it stays closed as expired, and its
  // GATE_DENIED audit row says what happened.
  await sql`update task_gates set state = 'expired' where state = 'denied'`.execute(db);
  await sql`alter table task_gates drop constraint if exists task_gates_state_check`.execute(db);
  await sql`alter table task_gates add constraint task_gates_state_check
              check (state in ('open','released','expired'))`.execute(db);
}
