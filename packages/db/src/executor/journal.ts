/**
 * The executor's write-ahead journal: before the first byte is written to a workspace, the plan of every file
 * operation and a backup of every file it replaces or deletes are committed here. After a crash, whoever holds
 * the workspace next reads the journal and finishes or rolls back what was in flight.
 */
import { sql } from 'kysely';
import type {
  ChangeSetJournalEntryRow,
  ChangeSetJournalRow,
  JournalPhase,
  JournalWriteState,
} from './tables.js';
import type { QueryExecutor } from '../database.js';

/** Phases in which a journal's change set may have touched the workspace without having finished. */
export const ACTIVE_JOURNAL_PHASES: readonly JournalPhase[] = [
  'prepared',
  'applying',
  'applied',
  'verifying',
  'rolling_back',
];

/**
 * One file of a journal: its path and operation, and what was there before (with a backup of its bytes). Every
 * column is required, unlike in `Insertable`: a journal that forgot a file's prior state could not restore it.
 * Its `write_state` starts `pending`; the apply moves it with {@link markJournalEntries}.
 */
export type NewJournalEntry = Omit<ChangeSetJournalEntryRow, 'journal_id' | 'write_state'>;

export interface NewJournal {
  tenant_id: string;
  changeset_id: string;
  attempt: number;
  workspace: string;
  fence_token: string;
  executor_id: string;
  /** Directories the apply will create (parents first), so a rollback can remove them again. */
  created_dirs: readonly string[];
  lease_expires_at: Date;
  entries: readonly NewJournalEntry[];
}

// Backups are bytea; a few thousand rows per statement keeps each INSERT well under Postgres' parameter limit.
const ENTRY_BATCH = 2000;

/** Writes the journal (phase `prepared`) and its entries. Returns the journal id. */
export async function createJournal(trx: QueryExecutor, journal: NewJournal): Promise<string> {
  const { journal_id } = await trx
    .insertInto('changeset_journals')
    .values({
      tenant_id: journal.tenant_id,
      changeset_id: journal.changeset_id,
      attempt: journal.attempt,
      workspace: journal.workspace,
      phase: 'prepared',
      fence_token: journal.fence_token,
      executor_id: journal.executor_id,
      created_dirs: JSON.stringify(journal.created_dirs),
      lease_expires_at: journal.lease_expires_at,
    })
    .returning('journal_id')
    .executeTakeFirstOrThrow();
  for (let offset = 0; offset < journal.entries.length; offset += ENTRY_BATCH) {
    await trx
      .insertInto('changeset_journal_entries')
      .values(journal.entries.slice(offset, offset + ENTRY_BATCH).map((entry) => ({ ...entry, journal_id })))
      .execute();
  }
  return journal_id;
}

/**
 * Moves a journal to `phase`. With `fenceToken`, only while the journal still belongs to that attempt
 * (recovery by a newer lock holder re-stamps it). Returns false when the guard did not hold.
 */
export async function setJournalPhase(
  db: QueryExecutor,
  journalId: string,
  phase: JournalPhase,
  guard: { fenceToken?: string; leaseExpiresAt?: Date } = {},
): Promise<boolean> {
  let query = db
    .updateTable('changeset_journals')
    .set({
      phase,
      updated_at: new Date(),
      ...(guard.leaseExpiresAt ? { lease_expires_at: guard.leaseExpiresAt } : {}),
    })
    .where('journal_id', '=', journalId);
  if (guard.fenceToken !== undefined) query = query.where('fence_token', '=', guard.fenceToken);
  const result = await query.executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/**
 * Records how far the apply got with entries: `writing` is committed before the first byte of an entry is
 * written, `applied` once entries are on disk. Called outside the apply's transaction on purpose, so it survives
 * a crash mid-apply: a rollback restores only entries that got this far, and only where the file still holds
 * what the executor wrote.
 */
export async function markJournalEntries(
  db: QueryExecutor,
  journalId: string,
  seqs: readonly number[],
  state: Exclude<JournalWriteState, 'pending'>,
): Promise<void> {
  if (seqs.length === 0) return;
  await db
    .updateTable('changeset_journal_entries')
    .set({ write_state: state })
    .where('journal_id', '=', journalId)
    .where('seq', 'in', [...seqs])
    .execute();
}

/** Hands an in-flight journal to a new lock holder (recovery): its fencing token and lease become the holder's. */
export async function takeOverJournal(
  db: QueryExecutor,
  journalId: string,
  fenceToken: string,
  executorId: string,
  leaseExpiresAt: Date,
): Promise<void> {
  await db
    .updateTable('changeset_journals')
    .set({
      fence_token: fenceToken,
      executor_id: executorId,
      lease_expires_at: leaseExpiresAt,
      updated_at: new Date(),
    })
    .where('journal_id', '=', journalId)
    .execute();
}

/** Pushes the lease of the journals an executor is working on (while it extends its workspace locks). */
export async function extendJournalLeases(
  db: QueryExecutor,
  journalIds: readonly string[],
  leaseExpiresAt: Date,
): Promise<void> {
  if (journalIds.length === 0) return;
  await db
    .updateTable('changeset_journals')
    .set({ lease_expires_at: leaseExpiresAt })
    .where('journal_id', 'in', [...journalIds])
    .execute();
}

/**
 * Journals still in flight, oldest first: all of them on the given workspaces, or (with `leaseExpiredBefore`)
 * only those whose executor stopped renewing its lease — a crashed or partitioned holder.
 */
export async function findActiveJournals(
  db: QueryExecutor,
  options: { workspaces?: readonly string[]; leaseExpiredBefore?: Date } = {},
): Promise<ChangeSetJournalRow[]> {
  if (options.workspaces && options.workspaces.length === 0) return [];
  let query = db
    .selectFrom('changeset_journals')
    .selectAll()
    .where('phase', 'in', [...ACTIVE_JOURNAL_PHASES])
    .orderBy('journal_id');
  if (options.workspaces) query = query.where('workspace', 'in', [...options.workspaces]);
  if (options.leaseExpiredBefore) query = query.where('lease_expires_at', '<', options.leaseExpiredBefore);
  return query.execute();
}

export async function findJournal(
  db: QueryExecutor,
  journalId: string,
  options: { forUpdate?: boolean } = {},
): Promise<ChangeSetJournalRow | undefined> {
  let query = db.selectFrom('changeset_journals').selectAll().where('journal_id', '=', journalId);
  if (options.forUpdate) query = query.forUpdate();
  return query.executeTakeFirst();
}

export async function listJournalEntries(
  db: QueryExecutor,
  journalId: string,
): Promise<ChangeSetJournalEntryRow[]> {
  return db
    .selectFrom('changeset_journal_entries')
    .selectAll()
    .where('journal_id', '=', journalId)
    .orderBy('seq')
    .execute();
}

/** Drops the backups of finished journals older than `before` (they hold copies of workspace files). */
export async function pruneJournalBackups(db: QueryExecutor, before: Date): Promise<number> {
  const result = await sql`
    update changeset_journal_entries e set backup = null
      from changeset_journals j
     where j.journal_id = e.journal_id and e.backup is not null
       and j.phase in ('committed', 'rolled_back') and j.updated_at < ${before}`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}
