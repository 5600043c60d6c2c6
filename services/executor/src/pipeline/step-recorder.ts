/**
 * Builds and records the steps of an execution. Every step is a `changeset_steps` row and, in the same
 * transaction, a row of the tenant's audit hash chain; step names come from the one ordered list
 * (`EXECUTION_STEPS`).
 */
import {
  recordChangeSetSteps,
  type ChangeSetKey,
  type ChangeSetPatch,
  type ChangeSetStepRecord,
  type Db,
  type QueryExecutor,
} from '@warden/db';
import {
  StaleLockError,
  type AuditLevel,
  type ChangeSetStatus,
  type ChangeSetStepStatus,
  type ExecutionStepName,
} from '@warden/domain';
import type { HeldWorkspace } from '../workspace-lock.js';
import { settleChangeSet, settleChangeSetIn, type Settlement } from './settle.js';

/** Which attempt of which change set a step belongs to. */
export interface AttemptRef {
  key: ChangeSetKey;
  attempt: number;
}

export interface StepEntry {
  step: ExecutionStepName;
  status: ChangeSetStepStatus;
  message: string;
  /** @defaultValue `{}` */
  detail?: Record<string, unknown>;
  /** The audit event type, e.g. `CHANGESET_APPLIED`. */
  event: string;
  /** @defaultValue none */
  durationMs?: number | null;
  /** @defaultValue `warn` for a failed step, else `info` */
  level?: AuditLevel;
}

export class StepRecorder {
  constructor(private readonly db: Db) {}

  /** A step of `attempt`, with its audit row, ready to record. */
  entry(of: AttemptRef, entry: StepEntry): ChangeSetStepRecord {
    return {
      ...of.key,
      attempt: of.attempt,
      step: entry.step,
      status: entry.status,
      message: entry.message,
      detail: entry.detail ?? {},
      duration_ms: entry.durationMs ?? null,
      audit: { event_type: entry.event, level: entry.level ?? (entry.status === 'failed' ? 'warn' : 'info') },
    };
  }

  /** Records steps that change nothing else (a failed check, a duplicate waiting), in a transaction of their own. */
  async record(steps: readonly ChangeSetStepRecord[]): Promise<void> {
    await this.db.transaction().execute((trx) => recordChangeSetSteps(trx, steps));
  }

  /**
   * Moves the change set on (its status, and whatever else `move` settles: journal phase, idempotency record)
   * with the steps that got it there, while `at` still holds it; throws StaleLockError when another executor
   * took it over.
   */
  async advance(at: AttemptRef & { held: Pick<HeldWorkspace, 'token'> }, move: Move): Promise<void> {
    const owned = await settleChangeSet(this.db, {
      ...move,
      key: at.key,
      owner: { fenceToken: at.held.token },
    });
    if (!owned) throw takenOver(move.patch.status);
  }

  /**
   * {@link advance} in the caller's transaction, so the move commits with what that transaction writes (the
   * journal, the fence check covering the writes) instead of in a transaction of its own. Throws StaleLockError,
   * and the caller's transaction rolls back, when another executor took the change set over.
   */
  async advanceIn(
    trx: QueryExecutor,
    at: AttemptRef & { held: Pick<HeldWorkspace, 'token'> },
    move: Move,
  ): Promise<void> {
    const owned = await settleChangeSetIn(trx, {
      ...move,
      key: at.key,
      owner: { fenceToken: at.held.token },
    });
    if (!owned) throw takenOver(move.patch.status);
  }
}

/** A settlement of an attempt that holds its workspace: the new status and what goes with it. */
export type Move = Omit<Settlement, 'key' | 'owner'> & {
  patch: ChangeSetPatch & { status: ChangeSetStatus };
};

/** The error of an execution whose change set another executor took over (it recovers the journal). */
export function takenOver(status: ChangeSetStatus): StaleLockError {
  return new StaleLockError(`another executor took this change set over before it could move to ${status}`);
}
