/**
 * The result an execution leaves on its change set (and in its idempotency record, for a duplicate to replay):
 * how it ended, what it did to how many files, its checks, and how long the apply and the rollback took.
 */
import type { FileChange } from './change-set.js';
import type { CheckOutcome, ExecutionResult } from './change-set-view.js';

export type FileCounts = ExecutionResult['files'];

/** Creates, updates and deletes in a list of changes. */
export function countFileChanges(changes: readonly Pick<FileChange, 'operation'>[]): FileCounts {
  return {
    created: changes.filter((c) => c.operation === 'create').length,
    updated: changes.filter((c) => c.operation === 'update').length,
    deleted: changes.filter((c) => c.operation === 'delete').length,
  };
}

/** Output kept of a failing check in results and steps: its tail, enough to see why. */
const KEPT_OUTPUT_CHARS = 2000;

/**
 * A check as results and step details keep it: a passing check without its output, a failing one with the
 * tail of it. Whole outputs would bloat every change set row and audit payload.
 */
export function checkForResult(check: CheckOutcome): CheckOutcome {
  const { output, ...rest } = check;
  if (check.ok || output === undefined || output === '') return rest;
  return { ...rest, output: output.slice(-KEPT_OUTPUT_CHARS) };
}

/** Time spent in a list of checks. */
export function totalCheckDuration(checks: readonly CheckOutcome[]): number {
  return checks.reduce((sum, c) => sum + c.duration_ms, 0);
}

/** Builds a result; what is not given did not happen (no files, no checks, no apply, no rollback, not replayed). */
export function executionResult(input: {
  outcome: ExecutionResult['outcome'];
  files?: FileCounts;
  checks?: CheckOutcome[];
  applyMs?: number | null;
  rollbackMs?: number | null;
  replayedFrom?: string | null;
}): ExecutionResult {
  return {
    outcome: input.outcome,
    files: input.files ?? { created: 0, updated: 0, deleted: 0 },
    checks: input.checks ?? [],
    apply_ms: input.applyMs ?? null,
    rollback_ms: input.rollbackMs ?? null,
    replayed_from: input.replayedFrom ?? null,
  };
}

/**
 * The result of a duplicate answered from the completed change set it duplicates: that one's files, checks and
 * apply time, marked `replayed_from`. A stored result may be partial (or absent) if it was written by an older
 * version; what is missing counts as nothing done.
 */
export function replayedExecutionResult(
  stored: Partial<ExecutionResult> | null,
  replayedFrom: string,
): ExecutionResult {
  return executionResult({
    outcome: 'completed',
    ...(stored?.files ? { files: stored.files } : {}),
    ...(stored?.checks ? { checks: stored.checks } : {}),
    applyMs: stored?.apply_ms ?? null,
    replayedFrom,
  });
}
