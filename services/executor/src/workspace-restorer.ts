/**
 * Puts a workspace back the way a journal found it: replaced and deleted files restored from their backups
 * (bytes and mode), created files and directories removed, stray temp files cleaned — then checks that every
 * file is byte-identical to before. Used by rollbacks and by crash recovery; every write is fenced.
 */
import { posix } from 'node:path';
import { StaleLockError, displayPath } from '@warden/domain';
import type { ChangeSetJournalEntryRow, Db } from '@warden/db';
import type { HeldWorkspace } from './workspace-lock.js';
import { WorkspaceFs } from './workspace-fs.js';
import { forEachLimit } from './concurrency.js';

/** What a restore needs of a journal entry: the path and what was there before, with its backup. */
export type JournalEntryBackup = Pick<
  ChangeSetJournalEntryRow,
  'seq' | 'path' | 'pre_exists' | 'pre_hash' | 'pre_mode' | 'backup'
>;

export interface RestoreResult {
  /** True when every file and directory is as it was before the change set. */
  identical: boolean;
  /** What could not be restored or does not match, one line each. */
  problems: string[];
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
  let restored = 0;
  let removed = 0;
  const fs = new WorkspaceFs(input.root);
  const session = fs.session();
  try {
    await input.db.transaction().execute(async (trx) => {
      await forEachLimit([...input.entries].reverse(), input.concurrency, async (entry) => {
        await input.held.assertFence(trx);
        const dir = dirOf(entry.path);
        await session.removeTemp(dir, applyTempName(input.journalId, entry.seq));
        await session.removeTemp(dir, restoreTempName(input.journalId, entry.seq));
        try {
          const state = await session.readState(entry.path);
          if (entry.pre_exists) {
            if (state.exists && state.hash === entry.pre_hash && state.mode === entry.pre_mode) return;
            if (!entry.backup) {
              problems.push(`${displayPath(entry.path)}: no backup to restore from`);
              return;
            }
            await session.writeFile(entry.path, entry.backup, {
              mode: entry.pre_mode ?? 0o644,
              tempName: restoreTempName(input.journalId, entry.seq),
              exclusive: false,
            });
            restored += 1;
          } else if (state.exists) {
            await session.removeFile(entry.path);
            removed += 1;
          }
        } catch (error) {
          if (error instanceof StaleLockError) throw error;
          problems.push(`${displayPath(entry.path)}: ${(error as Error).message}`);
        }
      });
      // Directories the apply created go too, deepest first, once empty.
      for (const dir of [...input.createdDirs].sort((a, b) => depth(b) - depth(a) || b.localeCompare(a))) {
        await input.held.assertFence(trx);
        try {
          await session.removeDirIfEmpty(dir);
        } catch (error) {
          problems.push(`directory ${displayPath(dir)}: ${(error as Error).message}`);
        }
      }
      await session.syncDirectories();
    });
  } finally {
    await session.close();
  }
  problems.push(...(await findDifferences(fs, input.entries, input.createdDirs)));
  return {
    identical: problems.length === 0,
    problems: [...new Set(problems)],
    restored,
    removed,
    durationMs: Math.round(performance.now() - started),
  };
}

/** Every way the workspace differs from what the journal recorded before the change set, read afresh. */
export async function findDifferences(
  fs: WorkspaceFs,
  entries: readonly JournalEntryBackup[],
  createdDirs: readonly string[],
): Promise<string[]> {
  const session = fs.session();
  const differences: string[] = [];
  try {
    for (const entry of entries) {
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
    }
    for (const dir of createdDirs) {
      if (await session.dirExists(dir).catch(() => true))
        differences.push(`directory ${displayPath(dir)} exists but did not before`);
    }
  } finally {
    await session.close();
  }
  return differences;
}
