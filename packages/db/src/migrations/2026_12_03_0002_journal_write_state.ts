import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.
// Which journal entries an apply actually wrote, so a rollback restores only those (and only where the file still
// holds what the executor wrote): `pending` never started, `writing` started (may or may not be on disk),
// `applied` written.

export async function up(db: Kysely<any>): Promise<void> {
  // Entries journaled before this column existed may have been written: `writing` lets the rollback's hash check
  // decide. New entries start `pending`.
  await sql`alter table changeset_journal_entries
              add column write_state text not null default 'writing'
              check (write_state in ('pending','writing','applied'))`.execute(db);
  await sql`alter table changeset_journal_entries alter column write_state set default 'pending'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table changeset_journal_entries drop column if exists write_state`.execute(db);
}
