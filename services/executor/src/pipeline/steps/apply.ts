/**
 * Step `applying`: the writes, in one transaction that checks the fencing token before each (a holder whose
 * lock expired writes nothing once a newer token exists). Per file: compare-and-swap once more, then a temp file
 * + fsync + rename (a create links, never overwrites; a delete unlinks); then the directories are fsynced.
 * Each entry is marked `writing` in the journal (committed) before its first byte, and the written ones `applied`
 * together once the writes stop (one statement, not one per file: a rollback treats `writing` the same, so a
 * crash before that mark loses nothing). A rollback undoes only those, so a file the apply never reached — perhaps changed by a concurrent writer, the reason the
 * apply stopped — is never put back over someone else's change.
 */
import { markJournalEntries, setJournalPhase } from '@warden/db';
import { CompareAndSwapError, StaleLockError, displayPath } from '@warden/domain';
import { forEachLimit, sleep } from '../../concurrency.js';
import { applyTempName } from '../../workspace-restorer.js';
import type { Attempt, Journal, Pipeline, Validated } from '../context.js';

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
  try {
    await options.db.transaction().execute(async (trx) => {
      for (const dir of journal.createdDirs) {
        await at.held.assertFence(trx);
        await session.ensureDir(dir);
      }
      try {
        await forEachLimit(journal.entries, options.writeConcurrency, async (entry) => {
          const change = validated.changes[entry.seq]!;
          if (options.writeDelayMs) await sleep(options.writeDelayMs);
          await at.held.assertFence(trx);
          if (change.operation !== 'create') {
            // Compare-and-swap once more at the moment of writing: the file must still be the one backed up.
            const now = await session.readState(change.path);
            if (!now.exists || now.hash !== entry.pre_hash)
              throw new CompareAndSwapError(`${displayPath(change.path)} changed during the apply`);
          }
          // Outside the transaction, so the mark is durable before the write even if the process dies mid-apply.
          await markJournalEntries(options.db, journal.id, [entry.seq], 'writing');
          if (change.operation === 'delete') {
            await session.removeFile(change.path);
            counts.deleted += 1;
          } else {
            await session.writeFile(change.path, Buffer.from(change.new_content ?? '', 'utf8'), {
              mode: entry.pre_mode ?? 0o644,
              tempName: applyTempName(journal.id, entry.seq),
              exclusive: change.operation === 'create',
            });
            counts[change.operation === 'create' ? 'created' : 'updated'] += 1;
          }
          written.push(entry.seq);
        });
      } catch (error) {
        // The writes stopped part-way: record the ones that landed, without hiding why they stopped.
        await markJournalEntries(options.db, journal.id, written, 'applied').catch(() => {});
        throw error;
      }
      await markJournalEntries(options.db, journal.id, written, 'applied');
      await session.syncDirectories();
      await setJournalPhase(trx, journal.id, 'applied', { fenceToken: at.held.token });
    });
  } finally {
    await session.close();
  }
  const applyMs = Math.round(performance.now() - started);
  options.metrics?.applySeconds.observe(applyMs / 1000);
  await recorder.advance(at, {
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
  return applyMs;
}
