/**
 * Step `applying`: the writes, in one transaction that holds the fencing token (checked `FOR SHARE` before each
 * batch: a holder whose lock expired writes nothing once a newer token exists, and a newer token waits until this
 * transaction ends). The entries go in batches of {@link APPLY_BATCH_FILES}; per batch:
 *   1. compare-and-swap once more for every update and delete (the file must still be the one backed up);
 *   2. the whole batch marked `writing` in the journal, in one committed statement, before its first byte;
 *   3. every file written to its temp file (O_EXCL | O_NOFOLLOW) and fsynced;
 *   4. renamed into place (a create links, never overwrites; a delete unlinks).
 * Then the written entries are marked `applied` together (a rollback treats `writing` the same, so a crash before
 * that mark loses nothing) and each touched directory is fsynced once.
 *
 * A crash anywhere is recovered from the journal: a `writing` entry whose file still holds what was there before
 * (its temp file not yet renamed) is left alone and its temp file removed; one holding what the executor wrote is
 * restored; one holding anything else is someone else's change, left alone. Entries of batches not yet marked are
 * never touched — so a file the apply never reached, perhaps changed by a concurrent writer (the reason the apply
 * stopped), is never put back over someone else's change.
 */
import { markJournalEntries } from '@warden/db';
import { CompareAndSwapError, StaleLockError, displayPath } from '@warden/domain';
import { allSettledOrThrow, forEachLimit, sleep } from '../../concurrency.js';
import { applyTempName } from '../../workspace-restorer.js';
import type { FsSession, StagedFile } from '../../workspace-fs.js';
import type { Attempt, Journal, Pipeline, Validated } from '../context.js';

/**
 * Entries per batch: marked `writing` in one statement, then written. Larger batches mean fewer round trips;
 * smaller ones fewer `writing` entries a crash leaves for the rollback to inspect (it only reads those).
 */
export const APPLY_BATCH_FILES = 100;

/** Applies the change set; returns how long the writes took (ms). */
export async function apply(
  { options, recorder }: Pipeline,
  at: Attempt,
  validated: Validated,
  journal: Journal,
): Promise<number> {
  // A lock we could not extend may be someone else's by now: start no write under it (the fence would refuse them).
  if (at.held.lost) throw new StaleLockError(at.held.lost);
  await recorder.advance(at, {
    patch: { status: 'applying' },
    journal: { id: journal.id, phase: 'applying', leaseUntil: at.held.leaseUntil() },
    steps: [],
  });
  const started = performance.now();
  const session = at.fs.session();
  const counts = { created: 0, updated: 0, deleted: 0 };
  const written: number[] = [];
  let applyMs = 0;
  try {
    await options.db.transaction().execute(async (trx) => {
      // Before the first write (a directory created counts): from here on the share lock holds any newer token
      // back until this transaction ends.
      await at.held.assertFence(trx);
      // Parents before children; the directories of one depth at once.
      for (const level of byDepth(journal.createdDirs))
        await allSettledOrThrow(level.map((dir) => session.ensureDir(dir)));
      try {
        for (let offset = 0; offset < journal.entries.length; offset += APPLY_BATCH_FILES) {
          const batch = journal.entries.slice(offset, offset + APPLY_BATCH_FILES);
          if (at.held.lost) throw new StaleLockError(at.held.lost);
          await forEachLimit(batch, options.writeConcurrency, async (entry) => {
            const change = validated.changes[entry.seq]!;
            if (change.operation === 'create') return;
            // Compare-and-swap once more at the moment of writing: the file must still be the one backed up.
            const now = await session.readState(change.path);
            if (!now.exists || now.hash !== entry.pre_hash)
              throw new CompareAndSwapError(`${displayPath(change.path)} changed during the apply`);
          });
          // Two connections at once, both before the batch's first byte: the mark commits outside the transaction
          // (durable before the writes even if the process dies), and the fence is read again in it — which also
          // proves the transaction, and so its share lock, is still alive (a dropped connection loses both).
          await allSettledOrThrow([
            at.held.assertFence(trx),
            markJournalEntries(
              options.db,
              journal.id,
              batch.map((entry) => entry.seq),
              'writing',
            ),
          ]);
          await writeBatch(options, session, validated, journal, batch, { counts, written });
        }
      } catch (error) {
        // The writes stopped part-way: record the ones that landed, without hiding why they stopped.
        await markJournalEntries(options.db, journal.id, written, 'applied').catch(() => {});
        throw error;
      }
      // Independent: a rollback treats `writing` and `applied` alike, and the directory fsyncs only make the
      // renames survive a power cut (without them a file simply still holds what was there before).
      await allSettledOrThrow([
        markJournalEntries(options.db, journal.id, written, 'applied'),
        session.syncDirectories(),
      ]);
      applyMs = Math.round(performance.now() - started);
      // The move to `verifying` commits with the transaction whose fence check covered the writes.
      await recorder.advanceIn(trx, at, {
        patch: { status: 'verifying' },
        journal: { id: journal.id, phase: 'verifying' },
        steps: [
          recorder.entry(at, {
            step: 'applying',
            status: 'ok',
            message: `${counts.created} created, ${counts.updated} updated, ${counts.deleted} deleted in ${applyMs} ms`,
            detail: { ...counts, apply_ms: applyMs },
            event: 'CHANGESET_APPLIED',
            durationMs: applyMs,
          }),
        ],
      });
    });
  } finally {
    await session.close();
  }
  options.metrics?.applySeconds.observe(applyMs / 1000);
  return applyMs;
}

/** Directories grouped by depth, shallowest first (`a`, then `a/b` and `c/d`, …). */
function byDepth(dirs: readonly string[]): string[][] {
  const levels = new Map<number, string[]>();
  for (const dir of dirs) {
    const depth = dir.split('/').length;
    levels.set(depth, [...(levels.get(depth) ?? []), dir]);
  }
  return [...levels.entries()].sort(([a], [b]) => a - b).map(([, level]) => level);
}

/**
 * Writes one batch already marked `writing`: every temp file written and fsynced, then each put in place; the seq
 * of each entry on disk is pushed to `progress.written` as it lands (also when the batch then fails).
 */
async function writeBatch(
  options: Pipeline['options'],
  session: FsSession,
  validated: Validated,
  journal: Journal,
  batch: Journal['entries'],
  progress: { counts: { created: number; updated: number; deleted: number }; written: number[] },
): Promise<void> {
  const { counts, written } = progress;
  const staged = new Map<number, StagedFile>();
  try {
    await forEachLimit(batch, options.writeConcurrency, async (entry) => {
      const change = validated.changes[entry.seq]!;
      if (change.operation === 'delete') return;
      staged.set(
        entry.seq,
        await session.stageFile(change.path, Buffer.from(change.new_content ?? '', 'utf8'), {
          mode: entry.pre_mode ?? 0o644,
          tempName: applyTempName(journal.id, entry.seq),
          exclusive: change.operation === 'create',
        }),
      );
    });
    await forEachLimit(batch, options.writeConcurrency, async (entry) => {
      const change = validated.changes[entry.seq]!;
      // Test-only fault injection: slows each file going into place, so a kill lands between renames.
      if (options.writeDelayMs) await sleep(options.writeDelayMs);
      if (change.operation === 'delete') {
        await session.removeFile(change.path);
        counts.deleted += 1;
      } else {
        await session.commitStaged(staged.get(entry.seq)!);
        staged.delete(entry.seq);
        counts[change.operation === 'create' ? 'created' : 'updated'] += 1;
      }
      written.push(entry.seq);
    });
  } catch (error) {
    // Temp files of the batch that will not be committed; a crash instead leaves them to the rollback.
    await Promise.all([...staged.values()].map((file) => session.discardStaged(file)));
    throw error;
  }
}
