/**
 * Outcome `refused`: the change set may not run as it is (tampered, denied on re-check, a file changed under it,
 * an unknown workspace, its idempotency key taken by other content). Nothing was written: it ends `failed` with
 * the reason, audited. The idempotency key is released for a retry — except on a conflict, where it belongs to
 * the other change set.
 */
import type { ChangeSetHeadRow } from '@warden/db';
import { executionResult } from '@warden/domain';
import { EXECUTABLE_STATUSES, nextAttempt, type ExecuteOutcome, type Pipeline } from '../context.js';
import { settleChangeSet } from '../settle.js';

export interface Refusal {
  code: string;
  message: string;
  /** @defaultValue nothing beyond the code */
  detail?: Record<string, unknown>;
}

/**
 * Refuses `row`'s next attempt. With `fenceToken` (the workspace is held) only while that holder owns the
 * change set; without, only while the change set has not finished.
 */
export async function refuse(
  { options, recorder }: Pipeline,
  row: ChangeSetHeadRow,
  refusal: Refusal,
  fenceToken?: string,
): Promise<ExecuteOutcome> {
  const of = nextAttempt(row);
  const result = executionResult({ outcome: 'failed' });
  await settleChangeSet(options.db, {
    key: of.key,
    owner: fenceToken === undefined ? { statusIn: EXECUTABLE_STATUSES } : { fenceToken },
    patch: {
      status: 'failed',
      attempts: of.attempt,
      finished_at: new Date(),
      error_code: refusal.code,
      error_message: refusal.message,
      result,
    },
    ...(refusal.code === 'idempotency_conflict'
      ? {}
      : {
          idempotency: {
            key: row.idempotency_key,
            state: 'failed',
            result,
            retentionMs: options.idempotencyRetentionMs,
          },
        }),
    steps: [
      recorder.entry(of, {
        step: 'validating',
        status: 'failed',
        message: `refused: ${refusal.message}`,
        detail: { code: refusal.code, ...refusal.detail },
        event: 'CHANGESET_REFUSED',
      }),
    ],
  });
  options.metrics?.outcomes.inc({ outcome: 'refused' });
  options.logger.warn(
    {
      module: 'executor',
      action: 'validate',
      status: 'refused',
      tenant_id: row.tenant_id,
      changeset_id: row.changeset_id,
      error_code: refusal.code,
    },
    refusal.message,
  );
  return { status: 'done', changeset_status: 'failed' };
}
