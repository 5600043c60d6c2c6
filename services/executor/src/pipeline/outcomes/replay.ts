/**
 * Outcome `replayed`: an identical change set (same idempotency key, same content) completed, so this one
 * completes with its stored result and writes nothing.
 */
import type { ChangeSetHeadRow, ExecutorIdempotencyRow } from '@warden/db';
import { replayedExecutionResult } from '@warden/domain';
import type { Logger } from '@warden/observability';
import { EXECUTABLE_STATUSES, nextAttempt, type ExecuteOutcome, type Pipeline } from '../context.js';
import { settleChangeSet } from '../settle.js';

export async function replay(
  { options, recorder }: Pipeline,
  row: ChangeSetHeadRow,
  record: ExecutorIdempotencyRow,
  log: Logger,
): Promise<ExecuteOutcome> {
  const of = nextAttempt(row);
  const now = new Date();
  await settleChangeSet(options.db, {
    key: of.key,
    owner: { statusIn: EXECUTABLE_STATUSES },
    patch: {
      status: 'completed',
      attempts: of.attempt,
      started_at: now,
      finished_at: now,
      result: replayedExecutionResult(record.result, record.changeset_id),
    },
    steps: [
      recorder.entry(of, {
        step: 'idempotency',
        status: 'ok',
        message: `identical to change set ${record.changeset_id}, which completed: its result is replayed and nothing is written`,
        detail: { idempotency_key: row.idempotency_key, replayed_from: record.changeset_id },
        event: 'CHANGESET_REPLAYED',
      }),
    ],
  });
  options.metrics?.outcomes.inc({ outcome: 'replayed' });
  log.info(
    { action: 'idempotency', status: 'replayed', replayed_from: record.changeset_id },
    'duplicate change set: stored result replayed',
  );
  return { status: 'done', changeset_status: 'completed', replayed_from: record.changeset_id };
}
