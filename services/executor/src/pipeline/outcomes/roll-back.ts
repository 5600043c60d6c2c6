/**
 * Outcome `rolled_back`: a step failed after files may have been written. The change set is `failed` while
 * every file is restored from the journal and checked byte for byte, then `rolled_back` — or `rollback_failed`
 * when the workspace could not be put back (an incident). Crash recovery settles its rollbacks the same way
 * (restore-settlement.ts).
 */
import { listJournalEntries, type ChangeSetStepRecord } from '@warden/db';
import { checkForResult, countFileChanges } from '@warden/domain';
import { restoreWorkspace } from '../../workspace-restorer.js';
import type { Attempt, ExecuteOutcome, Failure, Journal, Pipeline, Validated } from '../context.js';
import { conflictNote, restoreSettlement } from '../restore-settlement.js';

export async function rollBack(
  pipeline: Pipeline,
  at: Attempt,
  validated: Validated,
  journal: Journal,
  failure: Failure,
  applyMs: number | null,
): Promise<ExecuteOutcome> {
  const { options, recorder } = pipeline;
  const steps: ChangeSetStepRecord[] = [];
  // Verification and health checks record their own failed step; an apply that broke off does not.
  if (failure.step === 'applying')
    steps.push(
      recorder.entry(at, {
        step: 'applying',
        status: 'failed',
        message: failure.message,
        detail: { code: failure.code },
        event: 'CHANGESET_APPLY_FAILED',
      }),
    );
  steps.push(
    recorder.entry(at, {
      step: 'failed',
      status: 'failed',
      message: `${failure.message}; rolling back`,
      detail: { failed_step: failure.step, code: failure.code },
      event: 'CHANGESET_FAILED',
    }),
  );
  await recorder.advance(at, {
    patch: { status: 'failed', error_code: failure.code, error_message: failure.message },
    journal: { id: journal.id, phase: 'rolling_back' },
    steps,
  });
  at.log.warn(
    { action: 'rollback', status: 'started', failed_step: failure.step, error_code: failure.code },
    failure.message,
  );
  const restored = await restoreWorkspace({
    db: options.db,
    root: at.workspace.root,
    held: at.held,
    journalId: journal.id,
    // Read back from the journal: it knows which entries the apply reached (`writing` / `applied`).
    entries: await listJournalEntries(options.db, journal.id),
    createdDirs: journal.createdDirs,
    concurrency: options.writeConcurrency,
  });
  options.metrics?.rollbackSeconds.observe(restored.durationMs / 1000);
  const { outcome, move } = restoreSettlement(recorder, {
    of: at,
    journalId: journal.id,
    idempotency: { key: at.row.idempotency_key, retentionMs: options.idempotencyRetentionMs },
    restored,
    files: countFileChanges(validated.changes),
    checks: (failure.checks ?? []).map(checkForResult),
    applyMs,
    messages: {
      restored: `rolled back in ${restored.durationMs} ms: ${restored.restored} file(s) restored, ${restored.removed} removed; every file the executor wrote is byte-identical to before${conflictNote(restored.conflicts)}`,
      incomplete: `rollback incomplete: ${restored.problems.join('; ')}`,
      error: `${failure.message}; the rollback could not restore: ${restored.problems.join('; ')}`,
    },
  });
  await recorder.advance(at, move);
  options.metrics?.outcomes.inc({ outcome });
  at.log[restored.identical ? 'warn' : 'error'](
    {
      action: 'rollback',
      status: outcome,
      rollback_ms: restored.durationMs,
      problems: restored.problems,
      conflicts: restored.conflicts,
    },
    `change set ${outcome.replace('_', ' ')}`,
  );
  return { status: 'done', changeset_status: outcome };
}
