/**
 * Step `idempotency`: the key is SHA-256(`plan_id:checksum`). This change set claims it and runs — unless an
 * identical one completed (its result is replayed), is running (this one waits, then its job is deferred), or
 * the key was used with other content (refused).
 */
import {
  claimIdempotencyKey,
  listChangeSetSteps,
  type ChangeSetHeadRow,
  type ExecutorIdempotencyRow,
} from '@warden/db';
import type { Logger } from '@warden/observability';
import { sleep } from '../../concurrency.js';
import { nextAttempt, type ExecuteOutcome, type Pipeline } from '../context.js';
import { refuse } from '../outcomes/refuse.js';
import { replay } from '../outcomes/replay.js';

/** How often a duplicate looks again whether the identical change set has finished. */
const DUPLICATE_POLL_MS = 200;
/** When a deferred duplicate's job comes back. */
const DUPLICATE_RETRY_MS = 2000;

/** `claimed` when this change set runs under its key; otherwise how the execution ends for now. */
export async function claimIdempotency(
  pipeline: Pipeline,
  row: ChangeSetHeadRow,
  log: Logger,
): Promise<'claimed' | ExecuteOutcome> {
  const { db, duplicateWaitMs, idempotencyRetentionMs } = pipeline.options;
  const deadline = Date.now() + duplicateWaitMs;
  let noted = false;
  for (;;) {
    const claim = await db.transaction().execute((trx) =>
      claimIdempotencyKey(trx, {
        tenantId: row.tenant_id,
        key: row.idempotency_key,
        fingerprint: row.fingerprint,
        changesetId: row.changeset_id,
        retentionMs: idempotencyRetentionMs,
      }),
    );
    if (claim.status === 'claimed') return 'claimed';
    if (claim.status === 'replay') return replay(pipeline, row, claim.record, log);
    if (claim.status === 'mismatch')
      return refuse(pipeline, row, {
        code: 'idempotency_conflict',
        message: `plan ${row.plan_id} with checksum ${row.checksum} was executed as change set ${claim.record.changeset_id} with other content (workspace or plan); refused`,
      });
    // Visible at once: the duplicate's steps say what it waits for, however long that takes.
    if (!noted) await noteWaiting(pipeline, row, claim.record);
    noted = true;
    if (Date.now() >= deadline) {
      log.info(
        { action: 'idempotency', status: 'deferred', running: claim.record.changeset_id },
        'an identical change set is running; deferred',
      );
      return {
        status: 'deferred',
        reason: `identical change set ${claim.record.changeset_id} is running`,
        retryInMs: DUPLICATE_RETRY_MS,
      };
    }
    await sleep(DUPLICATE_POLL_MS);
  }
}

/** Records, once per attempt, that the change set waits for an identical one. */
async function noteWaiting(
  { options, recorder }: Pipeline,
  row: ChangeSetHeadRow,
  running: ExecutorIdempotencyRow,
): Promise<void> {
  const of = nextAttempt(row);
  const steps = await listChangeSetSteps(options.db, of.key);
  if (steps.some((s) => s.step === 'idempotency' && s.status === 'waiting' && s.attempt === of.attempt))
    return;
  await recorder.record([
    recorder.entry(of, {
      step: 'idempotency',
      status: 'waiting',
      message: `identical change set ${running.changeset_id} is running; this one waits for its result`,
      detail: { idempotency_key: row.idempotency_key, running: running.changeset_id },
      event: 'CHANGESET_DUPLICATE_WAITING',
    }),
  ]);
}
