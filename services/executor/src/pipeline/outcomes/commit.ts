/**
 * Outcome `completed`: every check passed. One transaction makes the change set completed, its journal
 * committed and its result replayable to duplicates under the same idempotency key.
 */
import type { ChangeSetStepRecord } from '@warden/db';
import { checkForResult, countFileChanges, executionResult, type CheckOutcome } from '@warden/domain';
import type { Attempt, ExecuteOutcome, Journal, Pipeline, Validated } from '../context.js';

export async function commit(
  { options, recorder }: Pipeline,
  at: Attempt,
  validated: Validated,
  journal: Journal,
  checks: readonly CheckOutcome[],
  applyMs: number,
  /** Rows of check steps that ran nothing, not recorded yet: they commit with the completion, before it. */
  unrecorded: readonly ChangeSetStepRecord[],
): Promise<ExecuteOutcome> {
  const result = executionResult({
    outcome: 'completed',
    files: countFileChanges(validated.changes),
    checks: checks.map(checkForResult),
    applyMs,
  });
  await recorder.advance(at, {
    patch: { status: 'completed', finished_at: new Date(), result },
    journal: { id: journal.id, phase: 'committed' },
    idempotency: {
      key: at.row.idempotency_key,
      state: 'completed',
      result,
      retentionMs: options.idempotencyRetentionMs,
    },
    steps: [
      ...unrecorded,
      recorder.entry(at, {
        step: 'completed',
        status: 'ok',
        message: `completed: ${result.files.created} created, ${result.files.updated} updated, ${result.files.deleted} deleted; verified`,
        detail: { ...result },
        event: 'CHANGESET_COMPLETED',
      }),
    ],
  });
  options.metrics?.outcomes.inc({ outcome: 'completed' });
  at.log.info(
    { action: 'execute', status: 'completed', apply_ms: applyMs, files: result.files },
    'change set completed',
  );
  return { status: 'done', changeset_status: 'completed' };
}
