import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.
// Expiry: a pause gate and a change set's approval carry a deadline; at the deadline the request is denied (the
// task blocked, the change set rejected). Nothing waits for a person for ever.

export async function up(db: Kysely<any>): Promise<void> {
  // The supervisor sets the deadline from the policy when it opens a gate. A gate written without one (an old
  // writer, a hand-made row) still gets 24 hours: a gate without a deadline would wait for ever.
  await sql`alter table task_gates add column expires_at timestamptz`.execute(db);
  await sql`update task_gates set expires_at = opened_at + interval '24 hours'`.execute(db);
  await sql`alter table task_gates alter column expires_at set default now() + interval '24 hours'`.execute(
    db,
  );
  await sql`alter table task_gates alter column expires_at set not null`.execute(db);
  await sql`alter table task_gates drop constraint if exists task_gates_state_check`.execute(db);
  await sql`alter table task_gates add constraint task_gates_state_check
              check (state in ('open','released','expired'))`.execute(db);
  // When the "expires soon" notice went out (once per gate).
  await sql`alter table task_gates add column expiry_warned_at timestamptz`.execute(db);
  // The sweeper's scan: open gates by deadline.
  await sql`create index task_gates_open_deadline_idx on task_gates (expires_at) where state = 'open'`.execute(
    db,
  );

  // Set at submission when the WriteGate asks for a person; waiting change sets from before get 24 hours.
  await sql`alter table changesets add column approval_expires_at timestamptz`.execute(db);
  await sql`alter table changesets add column approval_expiry_warned_at timestamptz`.execute(db);
  await sql`update changesets set approval_expires_at = now() + interval '24 hours'
             where approval_state = 'pending'`.execute(db);
  await sql`create index changesets_approval_deadline_idx on changesets (approval_expires_at)
             where approval_state = 'pending'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists changesets_approval_deadline_idx`.execute(db);
  await sql`alter table changesets drop column if exists approval_expires_at`.execute(db);
  await sql`alter table changesets drop column if exists approval_expiry_warned_at`.execute(db);
  await sql`drop index if exists task_gates_open_deadline_idx`.execute(db);
  // An expired gate was a denial: it stays closed as a released gate would, and its audit row says why.
  await sql`update task_gates set state = 'released' where state = 'expired'`.execute(db);
  await sql`alter table task_gates drop constraint if exists task_gates_state_check`.execute(db);
  await sql`alter table task_gates add constraint task_gates_state_check check (state in ('open','released'))`.execute(
    db,
  );
  await sql`alter table task_gates drop column if exists expires_at`.execute(db);
  await sql`alter table task_gates drop column if exists expiry_warned_at`.execute(db);
}
