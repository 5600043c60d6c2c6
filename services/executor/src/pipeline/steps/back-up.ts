/**
 * Step `backing_up`: the journal — every file operation, what each path held before (bytes, hash, mode) and the
 * directories the apply will create — committed to Postgres under the holder's fencing token and a lease before
 * any write, so a rollback or a crash recovery can put everything back.
 */
import { createJournal, recordChangeSetSteps, type NewJournalEntry } from '@warden/db';
import { contentSha256 } from '@warden/domain';
import type { Attempt, Journal, Pipeline, Validated } from '../context.js';

const depth = (path: string) => path.split('/').length;

export async function backUp(
  { options, recorder }: Pipeline,
  at: Attempt,
  validated: Validated,
): Promise<Journal> {
  const stateOf = (path: string) => validated.inspections.get(path)!;
  const entries: NewJournalEntry[] = validated.changes.map((change, seq) => {
    const { state } = stateOf(change.path);
    return {
      seq,
      path: change.path,
      operation: change.operation,
      pre_exists: state.exists,
      pre_hash: state.exists ? state.hash : null,
      pre_mode: state.exists ? state.mode : null,
      backup: state.exists ? state.content : null,
      // What the apply will write, hashed from the very bytes: a rollback undoes a file only while it holds them.
      new_hash: change.operation === 'delete' ? null : contentSha256(change.new_content ?? ''),
    };
  });
  // Parents first, so the apply can create them in order.
  const createdDirs = [...new Set(validated.changes.flatMap((c) => stateOf(c.path).missingDirs))].sort(
    (a, b) => depth(a) - depth(b) || a.localeCompare(b),
  );
  const backedUp = entries.filter((e) => e.backup).length;
  const bytes = entries.reduce((sum, e) => sum + (e.backup?.length ?? 0), 0);
  // The validation's step, the journal and its own step commit together, under the holder's fencing token; the
  // status stays `backing_up` until the apply takes over.
  const id = await options.db.transaction().execute(async (trx) => {
    await recorder.advanceIn(trx, at, { patch: { status: 'backing_up' }, steps: [] });
    const journalId = await createJournal(trx, {
      ...at.key,
      attempt: at.attempt,
      workspace: at.workspace.name,
      fence_token: at.held.token,
      executor_id: options.executorId,
      created_dirs: createdDirs,
      lease_expires_at: at.held.leaseUntil(),
      entries,
    });
    await recordChangeSetSteps(trx, [
      validated.step,
      recorder.entry(at, {
        step: 'backing_up',
        status: 'ok',
        message: `journal written; ${backedUp} file(s) backed up (${bytes} bytes)`,
        detail: {
          journal_id: journalId,
          files: entries.length,
          backed_up: backedUp,
          bytes,
          created_dirs: createdDirs.length,
        },
        event: 'CHANGESET_BACKED_UP',
      }),
    ]);
    return journalId;
  });
  return { id, entries, createdDirs };
}
