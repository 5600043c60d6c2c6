/**
 * The steps a change set goes through, in order: the one list every writer of `changeset_steps` (the API at
 * submission and approval, the executor's pipeline, crash recovery) names its steps from, and the numbering
 * docs/executor.md uses.
 */
import { EXECUTING_CHANGESET_STATUSES } from './change-set-view.js';

/** Steps recorded before execution, all with attempt 0. */
export const SUBMISSION_STEPS = [
  'submitted',
  'gated',
  'approval_refused',
  'approved',
  'rejected',
  // Nobody approved before the deadline: rejected by the expiry (docs/executor.md, "Expiry").
  'approval_expired',
] as const;

/**
 * Steps of one execution attempt, in the order they run. `completed` and `failed` are alternatives (a failure
 * after writing is followed by `rollback`); `recovery` is recorded when a later holder of the workspace finds the
 * attempt's journal in flight and rolls it back.
 */
export const EXECUTION_STEPS = [
  'idempotency',
  'locked',
  'recovery',
  // A change set in one of these statuses is in the step of the same name.
  ...EXECUTING_CHANGESET_STATUSES,
  'completed',
  'failed',
  'rollback',
] as const;

export const CHANGESET_STEPS = [...SUBMISSION_STEPS, ...EXECUTION_STEPS] as const;
export type ChangeSetStepName = (typeof CHANGESET_STEPS)[number];
export type ExecutionStepName = (typeof EXECUTION_STEPS)[number];
