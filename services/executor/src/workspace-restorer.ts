/**
 * Puts a workspace back the way a journal found it — but only what the executor itself changed: an entry the
 * apply never started is left alone, and an entry whose file no longer holds what the executor wrote (someone
 * else changed it meanwhile) is left alone too and reported as a conflict, never overwritten or deleted. The rest
 * is undone: replaced and deleted files restored from their backups (bytes and mode), created files and
 * directories removed, stray temp files cleaned — then every undone file is checked byte for byte. Used by
 * rollbacks and by crash recovery; every write is fenced.
 */
import { posix } from 'node:path';
import { CompareAndSwapError, StaleLockError, displayPath } from '@warden/domain';
import type { ChangeSetJournalEntryRow, Db } from '@warden/db';
import type { HeldWorkspace } from './workspace-lock.js';
import { WorkspaceFs, type FileState } from './workspace-fs.js';
import { forEachLimit } from './concurrency.js';

/** What a restore needs of a journal entry: the path, what was there before (with its backup), what was written. */
export type JournalEntryBackup = Pick<
  ChangeSetJournalEntryRow,
  | 'seq'
  | 'path'
  | 'operation'
  | 'pre_exists'
  | 'pre_hash'
  | 'pre_mode'
  | 'backup'
  | 'new_hash'
  | 'write_state'
>;

export interface RestoreResult {
  /** True when everything the executor changed is as it was before the change set (conflicts aside). */
  identical: boolean;
  /** What could not be restored or does not match, one line each. */
  problems: string[];
  /**
   * Paths someone else changed after the executor wrote them (and directories that now hold their files): left
   * exactly as they are, one line each. Not a failure of the rollback: the workspace holds their change.
   */
  conflicts: string[];
  restored: number;
  removed: number;
  durationMs: number;
}

/** Temp file names are derived from the journal entry, so a recovery knows what a crash may have left behind. */
export function applyTempName(journalId: string, seq: number): string {
  return `.wd-${journalId}-${seq}.warden-tmp`;
}

export function restoreTempName(journalId: string, seq: number): string {
  return `.wd-${journalId}-${seq}-r.warden-tmp`;
}

const dirOf = (path: string) => {
  const dir = posix.dirname(path);
  return dir === '.' ? '' : dir;
};
const depth = (path: string) => path.split('/').length;

export async function restoreWorkspace(input: {
  db: Db;
  root: string;
  held: HeldWorkspace;
  journalId: string;
  entries: readonly JournalEntryBackup[];
  createdDirs: readonly string[];
  concurrency: number;
}): Promise<RestoreResult> {
  const started = performance.now();
  const problems: string[] = [];
  const conflicts: string[] = [];
  const conflicted = new Set<string>();
  const keptDirs = new Set<string>();
  let restored = 0;
  let removed = 0;
  const fs = new WorkspaceFs(input.root);
  const session = fs.session();
  const conflict = (path: string, message: string) => {
    conflicted.add(path);
    conflicts.push(`${displayPath(path)}: ${message}; left as it is`);
  };
  try {
    await input.db.transaction().execute(async (trx) => {
      // Checked once for all the writes below: the share lock it takes holds any newer token back until this
      // transaction ends, so the token cannot change under them.
      await input.held.assertFence(trx);
      await forEachLimit([...input.entries].reverse(), input.concurrency, async (entry) => {
        const dir = dirOf(entry.path);
        // Only an entry caught `writing` can have left an apply temp file: `pending` ones were never staged and
        // `applied` ones were renamed (or linked and unlinked) into place.
        if (entry.write_state === 'writing')
          await session.removeTemp(dir, applyTempName(input.journalId, entry.seq));
        await session.removeTemp(dir, restoreTempName(input.journalId, entry.seq));
        try {
          const state = await session.readState(entry.path);
          if (isAsBefore(entry, state)) return;
          // Never started: the executor wrote nothing here, so what changed is someone else's — reported only.
          if (entry.write_state === 'pending') {
            conflict(
              entry.path,
              'changed by someone else while the change set ran (the executor never wrote it)',
            );
            return;
          }
          if (!holdsWhatWasWritten(entry, state)) {
            conflict(entry.path, 'changed by someone else after the executor wrote it');
            return;
          }
          if (entry.pre_exists) {
            if (!entry.backup) {
              problems.push(`${displayPath(entry.path)}: no backup to restore from`);
              return;
            }
            // A deleted file comes back with a create that never overwrites: should a file have appeared in
            // the meantime, it is someone else's.
            await session.writeFile(entry.path, entry.backup, {
              mode: entry.pre_mode ?? 0o644,
              tempName: restoreTempName(input.journalId, entry.seq),
              exclusive: entry.operation === 'delete',
            });
            restored += 1;
          } else if (state.exists) {
            await session.removeFile(entry.path);
            removed += 1;
          }
        } catch (error) {
          if (error instanceof StaleLockError) throw error;
          if (error instanceof CompareAndSwapError)
            conflict(entry.path, 'created by someone else after the executor deleted it');
          else problems.push(`${displayPath(entry.path)}: ${(error as Error).message}`);
        }
      });
      // Directories the apply created go too, deepest first, once empty; one holding someone else's files stays.
      for (const dir of [...input.createdDirs].sort((a, b) => depth(b) - depth(a) || b.localeCompare(a))) {
        try {
          if ((await session.removeDirIfEmpty(dir)) === 'not_empty') {
            keptDirs.add(dir);
            conflicts.push(
              `directory ${displayPath(dir)}: holds files the executor did not write; left in place`,
            );
          }
        } catch (error) {
          problems.push(`directory ${displayPath(dir)}: ${(error as Error).message}`);
        }
      }
      await session.syncDirectories();
    });
  } finally {
    await session.close();
  }
  const undone = input.entries.filter((e) => e.write_state !== 'pending' && !conflicted.has(e.path));
  problems.push(
    ...(await findDifferences(
      fs,
      undone,
      input.createdDirs.filter((d) => !keptDirs.has(d)),
      input.concurrency,
    )),
  );
  return {
    identical: problems.length === 0,
    problems: [...new Set(problems)],
    conflicts,
    restored,
    removed,
    durationMs: Math.round(performance.now() - started),
  };
}

/** The file is as the journal found it before the change set: nothing to undo. */
function isAsBefore(entry: JournalEntryBackup, state: FileState): boolean {
  if (!entry.pre_exists) return !state.exists;
  return state.exists && state.hash === entry.pre_hash && state.mode === entry.pre_mode;
}

/** The file holds what the executor wrote (or, for a delete, is still gone): safe to undo. */
function holdsWhatWasWritten(entry: JournalEntryBackup, state: FileState): boolean {
  if (entry.operation === 'delete') return !state.exists;
  return state.exists && state.hash === entry.new_hash;
}

/** Every way the given entries and directories differ from what the journal recorded before, read afresh. */
export async function findDifferences(
  fs: WorkspaceFs,
  entries: readonly JournalEntryBackup[],
  createdDirs: readonly string[],
  concurrency = 1,
): Promise<string[]> {
  const session = fs.session();
  const differences: string[] = [];
  try {
    await forEachLimit(entries, concurrency, async (entry) => {
      try {
        const state = await session.readState(entry.path);
        if (entry.pre_exists && !state.exists) differences.push(`${displayPath(entry.path)} is missing`);
        else if (entry.pre_exists && state.exists && state.hash !== entry.pre_hash)
          differences.push(`${displayPath(entry.path)} differs from its backup`);
        else if (entry.pre_exists && state.exists && state.mode !== entry.pre_mode)
          differences.push(
            `${displayPath(entry.path)} has mode ${state.mode.toString(8)}, was ${entry.pre_mode?.toString(8)}`,
          );
        else if (!entry.pre_exists && state.exists)
          differences.push(`${displayPath(entry.path)} exists but did not before`);
      } catch (error) {
        differences.push(`${displayPath(entry.path)}: ${(error as Error).message}`);
      }
    });
    for (const dir of createdDirs) {
      if (await session.dirExists(dir).catch(() => true))
        differences.push(`directory ${displayPath(dir)} exists but did not before`);
    }
  } finally {
    await session.close();
  }
  return differences;
}
