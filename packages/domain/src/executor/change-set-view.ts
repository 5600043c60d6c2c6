/**
 * A change set's lifecycle and how the API shows it: status, approval, each recorded step, the execution result.
 */
import { z } from 'zod';
import { ChangePlanSchema, FileOperationSchema } from './change-set.js';
import { WriteGateResultSchema } from './write-gate.js';

/** Statuses of a change set the executor is working on, in order (each is also the name of its step). */
export const EXECUTING_CHANGESET_STATUSES = [
  'validating',
  'backing_up',
  'applying',
  'verifying',
  'health_checking',
] as const;

/** Statuses nothing moves a change set out of. */
export const TERMINAL_CHANGESET_STATUSES = [
  'completed',
  'failed',
  'rolled_back',
  'rollback_failed',
  'rejected',
  'denied',
] as const;

/**
 * `pending` (waiting for approval or for the executor) → `validating → backing_up → applying → verifying →
 * health_checking → completed`; a failure before anything was written ends `failed`, after → `rolled_back`
 * (or `rollback_failed` when the files could not be restored byte for byte — an incident). `denied` (WriteGate)
 * and `rejected` (a person) end a change set before execution.
 */
export const CHANGESET_STATUSES = [
  'pending',
  ...EXECUTING_CHANGESET_STATUSES,
  ...TERMINAL_CHANGESET_STATUSES,
] as const;
export const ChangeSetStatusSchema = z.enum(CHANGESET_STATUSES);
export type ChangeSetStatus = z.infer<typeof ChangeSetStatusSchema>;

export function isTerminalChangeSetStatus(status: string): boolean {
  return (TERMINAL_CHANGESET_STATUSES as readonly string[]).includes(status);
}

/**
 * True when nothing more will happen to the change set. `failed` is final only once `finished_at` is set: a
 * change set that failed after writing is `failed` while its rollback runs, then `rolled_back`.
 */
export function isChangeSetFinished(status: string, finishedAt: string | Date | null): boolean {
  if (status === 'failed') return finishedAt !== null;
  return isTerminalChangeSetStatus(status);
}

/** `not_required` (ALLOW or DENY), `pending` (NEED_APPROVAL, waiting), `approved`, `rejected` (final). */
export const ApprovalStateSchema = z.enum(['not_required', 'pending', 'approved', 'rejected']);
export type ApprovalState = z.infer<typeof ApprovalStateSchema>;

export const ChangeSetStepStatusSchema = z.enum(['ok', 'failed', 'skipped', 'waiting']);
export type ChangeSetStepStatus = z.infer<typeof ChangeSetStepStatusSchema>;

export const ChangeSetStepSchema = z.object({
  /** `submitted`, `approved`, `idempotency`, `locked`, `validating`, `backing_up`, `applying`, `verifying`, `health_checking`, `completed`, `rollback`, `recovery`, … */
  step: z.string(),
  status: ChangeSetStepStatusSchema,
  /** Execution attempt the step belongs to (0 for submission and approval). */
  attempt: z.number().int(),
  message: z.string(),
  detail: z.record(z.string(), z.unknown()),
  duration_ms: z.number().nullable(),
  at: z.string(),
});
export type ChangeSetStep = z.infer<typeof ChangeSetStepSchema>;

export const CheckOutcomeSchema = z.object({
  name: z.string(),
  kind: z.enum(['verification', 'health_check']),
  ok: z.boolean(),
  duration_ms: z.number(),
  /** Exit code, HTTP status, or the reason it did not run to the end (timeout, circuit open). */
  detail: z.string(),
  /** The last lines of output, for commands. */
  output: z.string().optional(),
});
export type CheckOutcome = z.infer<typeof CheckOutcomeSchema>;

export const ExecutionResultSchema = z.object({
  outcome: z.enum(['completed', 'failed', 'rolled_back', 'rollback_failed']),
  files: z.object({ created: z.number().int(), updated: z.number().int(), deleted: z.number().int() }),
  checks: z.array(CheckOutcomeSchema),
  apply_ms: z.number().nullable(),
  rollback_ms: z.number().nullable(),
  /** Set when this change set did not run itself but replayed the stored result of an identical one. */
  replayed_from: z.string().nullable(),
});
export type ExecutionResult = z.infer<typeof ExecutionResultSchema>;

export const ChangeSetErrorSchema = z.object({ code: z.string(), message: z.string() });
export type ChangeSetError = z.infer<typeof ChangeSetErrorSchema>;

export const ChangeSummarySchema = z.object({
  operation: FileOperationSchema,
  path: z.string(),
  old_hash: z.string().nullable(),
  new_hash: z.string().nullable(),
  changed_lines: z.number().int(),
});

export const ChangeSetViewSchema = z.object({
  changeset_id: z.string(),
  plan_id: z.string(),
  workspace: z.string(),
  generated_by: z.string(),
  status: ChangeSetStatusSchema,
  checksum: z.string(),
  plan_hash: z.string(),
  idempotency_key: z.string(),
  /** The API key that submitted it (`api_key:<id>`). */
  submitted_by: z.string(),
  submitted_at: z.string(),
  updated_at: z.string(),
  verdict: WriteGateResultSchema,
  approval: z.object({
    state: ApprovalStateSchema,
    decided_by: z.string().nullable(),
    decided_at: z.string().nullable(),
    /** The checksum the approval is bound to. */
    checksum: z.string().nullable(),
    note: z.string().nullable(),
    /** While the approval is pending: when it will be denied (the change set rejected). Null when none was asked. */
    expires_at: z.string().nullable(),
  }),
  execution: z.object({
    attempts: z.number().int(),
    started_at: z.string().nullable(),
    finished_at: z.string().nullable(),
    error: ChangeSetErrorSchema.nullable(),
    result: ExecutionResultSchema.nullable(),
  }),
  steps: z.array(ChangeSetStepSchema),
  plan: ChangePlanSchema,
  changes: z.array(ChangeSummarySchema),
});
export type ChangeSetView = z.infer<typeof ChangeSetViewSchema>;

/** What a person writes with a decision (an approval's note, a rejection's reason); stored and audited. */
const DecisionTextSchema = z
  .string()
  .max(2000)
  .refine((v) => !v.includes('\u0000'), 'must not contain NUL characters');

/** `POST /v1/changesets/:id/approve`: the checksum the approver reviewed (checked against the stored one). */
export const ApproveChangeSetSchema = z
  .object({
    checksum: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'must be the change set checksum (64 lowercase hex digits)')
      .optional(),
    note: DecisionTextSchema.optional(),
  })
  .strict();
export type ApproveChangeSet = z.infer<typeof ApproveChangeSetSchema>;

export const RejectChangeSetSchema = z
  .object({
    reason: DecisionTextSchema.optional(),
  })
  .strict();
export type RejectChangeSet = z.infer<typeof RejectChangeSetSchema>;
