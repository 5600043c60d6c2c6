/**
 * The one transaction that records where a change set stands: its row, its journal's phase, its idempotency
 * record and the steps that brought it there (each with its audit row). Every status change of an execution —
 * each step, commit, rollback, refusal, replay, and crash recovery's outcome — goes through it, so a change
 * set's status, its journal, its idempotency record and its audited history never disagree.
 */
import {
  recordChangeSetSteps,
  setJournalPhase,
  settleIdempotencyKey,
  updateChangeSet,
  type ChangeSetKey,
  type ChangeSetPatch,
  type ChangeSetStepRecord,
  type Db,
  type JournalPhase,
  type QueryExecutor,
} from '@warden/db';
import type { ChangeSetStatus, ExecutionResult } from '@warden/domain';

export interface Settlement {
  key: ChangeSetKey;
  /**
   * Who may move the change set: the execution holding this fencing token, or — for a refusal or replay decided
   * before any lock is held — whoever finds it still in one of these statuses.
   */
  owner: { fenceToken: string } | { statusIn: readonly ChangeSetStatus[] };
  patch: ChangeSetPatch;
  /**
   * The phase the journal moves to, under the owner's fencing token, and optionally a new lease.
   * @defaultValue the journal (if any) is left as it is
   */
  journal?: { id: string; phase: JournalPhase; leaseUntil?: Date };
  /**
   * How the run under the idempotency key ended; a completed one is replayed to duplicates for `retentionMs`.
   * @defaultValue the idempotency record is left as it is
   */
  idempotency?: { key: string; state: 'completed' | 'failed'; result: ExecutionResult; retentionMs: number };
  steps: readonly ChangeSetStepRecord[];
}

/**
 * Applies a settlement in one transaction. Returns false, having written nothing, when the owner no longer owns
 * the change set (another executor took it over, or its status moved on).
 */
export async function settleChangeSet(db: Db, settlement: Settlement): Promise<boolean> {
  return db.transaction().execute((trx) => settleChangeSetIn(trx, settlement));
}

/**
 * Applies a settlement in the caller's transaction — one that must commit it whole, such as the apply's (the
 * settlement then commits with the fence check that covered the writes, in one round trip less). Returns false
 * when the owner no longer owns the change set; the caller then must not commit what it wrote (throw).
 */
export async function settleChangeSetIn(trx: QueryExecutor, settlement: Settlement): Promise<boolean> {
  const { key, owner, journal, idempotency } = settlement;
  if (!(await updateChangeSet(trx, key, settlement.patch, owner))) return false;
  // The change set and its journal change hands together (recovery re-stamps both in one transaction), so the
  // change set's guard above also holds for the journal.
  if (journal && 'fenceToken' in owner) {
    await setJournalPhase(trx, journal.id, journal.phase, {
      fenceToken: owner.fenceToken,
      ...(journal.leaseUntil ? { leaseExpiresAt: journal.leaseUntil } : {}),
    });
  }
  if (idempotency) {
    await settleIdempotencyKey(trx, {
      tenantId: key.tenant_id,
      key: idempotency.key,
      changesetId: key.changeset_id,
      state: idempotency.state,
      result: idempotency.result,
      retentionMs: idempotency.retentionMs,
    });
  }
  await recordChangeSetSteps(trx, settlement.steps);
  return true;
}
