/**
 * Named errors of the change-set path. The API maps each to a status once (services/api/src/http-errors.ts);
 * the executor maps them to change-set outcomes (refused before writing, or rolled back).
 */
import { WardenError } from '../errors.js';

/** The checksum does not match the changes (tampered, or sealed wrong). 400 at submission; refused by the executor. */
export class ChecksumMismatchError extends WardenError {
  readonly code = 'checksum_mismatch';
}

/** A path the change set may not touch: unsafe, forbidden, outside the workspace, or through a symlink. 403. */
export class ForbiddenPathError extends WardenError {
  readonly code = 'forbidden_path';
}

/** The WriteGate denied the change set (at submission or on the executor's re-check). 403. */
export class WriteGateDeniedError extends WardenError {
  readonly code = 'writegate_denied';
}

/** The submitter tried to approve their own change set. 403. */
export class SelfApprovalError extends WardenError {
  readonly code = 'self_approval';
}

/** The change set is not in a state that allows this (approve a denied one, reject after approval…). 409. */
export class ChangeSetStateError extends WardenError {
  readonly code = 'invalid_state';
}

/** The idempotency key (plan id + checksum) was used before with other content. 409. */
export class IdempotencyConflictError extends WardenError {
  readonly code = 'idempotency_conflict';
}

/** An identical change set is being executed right now; try again when it is done. 409. */
export class ConcurrentExecutionError extends WardenError {
  readonly code = 'execution_in_progress';
}

/** A file is not what the change set expected (compare-and-swap on `old_hash`, or a create over an existing file). 409. */
export class CompareAndSwapError extends WardenError {
  readonly code = 'cas_mismatch';
}

/** The workspace lock was lost and another holder has a newer fencing token: this holder must not write. 409. */
export class StaleLockError extends WardenError {
  readonly code = 'stale_lock';
}
