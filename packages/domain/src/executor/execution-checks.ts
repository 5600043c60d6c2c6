/**
 * What the executor checks, with no I/O of its own, before it writes a byte: that the change set may run at
 * all, that its stored changes and plan still hash to what was submitted and approved, that the WriteGate re-run
 * with the executor's own policy still lets it through, and that every file it replaces or deletes is the one
 * it was written against (compare-and-swap). Each check throws the WardenError the change set is refused with.
 */
import { computeChangeSetChecksum, computePlanHash, expectedHashes } from './checksum.js';
import type { ChangePlan, FileChange } from './change-set.js';
import {
  ChangeSetStateError,
  ChecksumMismatchError,
  CompareAndSwapError,
  WriteGateDeniedError,
} from './executor-errors.js';
import { displayPath } from './path-safety.js';
import type { WriteGateResult } from './write-gate.js';

/** The verdict stored at submission and where the approval stands, as a change set row holds them. */
export interface ChangeSetAuthorization {
  verdict: string;
  approval_state: string;
}

/** True when the executor may take the change set: allowed with no approval needed, or approved by a person. */
export function isExecutableChangeSet(row: ChangeSetAuthorization): boolean {
  return (
    (row.verdict === 'ALLOW' && row.approval_state === 'not_required') || row.approval_state === 'approved'
  );
}

/**
 * Throws unless the verdict stored at submission lets the change set run: a DENY never runs, a NEED_APPROVAL
 * only once approved. (The queue should never hand over such a change set; this holds even if it does.)
 */
export function assertSubmissionVerdictAllows(row: ChangeSetAuthorization): void {
  if (row.verdict === 'DENY')
    throw new WriteGateDeniedError('the WriteGate denied this change set at submission');
  if (row.verdict === 'NEED_APPROVAL' && row.approval_state !== 'approved')
    throw new ChangeSetStateError('the change set needs approval and is not approved');
}

/**
 * Recomputes the checksum of the changes as stored (the parsed JSON, before schema defaults: exactly what the
 * checksum covers) and throws ChecksumMismatchError when it is not the stored one. Returns the checksum.
 */
export function verifyChangesChecksum(storedChecksum: string, rawChanges: readonly unknown[]): string {
  const checksum = computeChangeSetChecksum(rawChanges);
  if (checksum !== storedChecksum)
    throw new ChecksumMismatchError(
      `checksum mismatch: change set tampered (stored checksum ${storedChecksum}, the changes hash to ${checksum}); nothing was written`,
    );
  return checksum;
}

/** Recomputes the plan hash and throws ChecksumMismatchError when the plan changed after submission. Returns the hash. */
export function verifyPlanHash(storedPlanHash: string, plan: ChangePlan): string {
  const planHash = computePlanHash(plan);
  if (planHash !== storedPlanHash)
    throw new ChecksumMismatchError(
      `plan hash mismatch: the plan was changed after submission (stored ${storedPlanHash}, now ${planHash}); nothing was written`,
    );
  return planHash;
}

/** Where an approval stands and what it was bound to when given. */
export interface ApprovalBinding {
  approval_state: string;
  approval_checksum: string | null;
  approval_plan_hash: string | null;
}

/**
 * An approval covers the changes and the plan the approver saw: throws ChecksumMismatchError when an approved
 * change set's checksum or plan hash is no longer the one the approval is bound to. No approval, nothing to check.
 */
export function verifyApprovalBinding(
  approval: ApprovalBinding,
  current: { checksum: string; planHash: string },
): void {
  if (approval.approval_state !== 'approved') return;
  if (approval.approval_checksum !== current.checksum || approval.approval_plan_hash !== current.planHash)
    throw new ChecksumMismatchError(
      `checksum mismatch: change set tampered after approval (approved checksum ${approval.approval_checksum}, now ${current.checksum}); nothing was written`,
    );
}

/**
 * The executor re-runs the WriteGate with its own policy and what is on disk: a DENY refuses the change set,
 * and so does a NEED_APPROVAL for one that was let through without approval (a tightened policy applies to
 * change sets already queued). Throws WriteGateDeniedError with every blocking reason as a detail.
 */
export function assertRecheckAllows(verdict: WriteGateResult, approved: boolean): void {
  const blocking = verdict.reasons.filter((r) => r.outcome === 'deny' || r.outcome === 'need_approval');
  const details = blocking.map((r) => ({ path: r.step, message: `${r.code}: ${r.message}` }));
  if (verdict.verdict === 'DENY')
    throw new WriteGateDeniedError(
      `the WriteGate re-check denied the change set: ${blocking
        .filter((r) => r.outcome === 'deny')
        .map((r) => r.message)
        .join('; ')}`,
      details,
    );
  if (verdict.verdict === 'NEED_APPROVAL' && !approved)
    throw new WriteGateDeniedError(
      `the executor's WriteGate policy requires approval: ${blocking.map((r) => r.message).join('; ')}`,
      details,
    );
}

/** A file as the executor found it on disk: absent, or present with the SHA-256 of its bytes. */
export type ObservedFile = { exists: false } | { exists: true; hash: string };

export interface CompareAndSwapMismatch {
  path: string;
  message: string;
}

/**
 * Every change whose file is not what the change set was written against: a create whose file exists, an
 * update or delete whose file is missing or has other bytes than `old_hash` (or `old_content`) says.
 */
export function findCompareAndSwapMismatches(
  changes: readonly FileChange[],
  observed: (path: string) => ObservedFile,
): CompareAndSwapMismatch[] {
  const mismatches: CompareAndSwapMismatch[] = [];
  for (const change of changes) {
    const state = observed(change.path);
    const expected = expectedHashes(change).oldHash;
    if (change.operation === 'create' && state.exists)
      mismatches.push({ path: change.path, message: 'exists already; a create never overwrites' });
    else if (change.operation !== 'create' && !state.exists)
      mismatches.push({ path: change.path, message: 'does not exist' });
    else if (change.operation !== 'create' && state.exists && state.hash !== expected)
      mismatches.push({
        path: change.path,
        message: `changed since the change set was made (now ${state.hash}, expected ${expected})`,
      });
  }
  return mismatches;
}

/** Messages name at most this many files; the error's details list them all. */
const MISMATCHES_NAMED = 10;

/** Throws CompareAndSwapError naming the mismatched files, unless every file is as the change set expects. */
export function assertCompareAndSwap(
  changes: readonly FileChange[],
  observed: (path: string) => ObservedFile,
): void {
  const mismatches = findCompareAndSwapMismatches(changes, observed);
  if (mismatches.length === 0) return;
  const named = mismatches
    .slice(0, MISMATCHES_NAMED)
    .map((m) => `${displayPath(m.path)} ${m.message}`)
    .join('; ');
  const more =
    mismatches.length > MISMATCHES_NAMED ? ` and ${mismatches.length - MISMATCHES_NAMED} more` : '';
  throw new CompareAndSwapError(
    `compare-and-swap failed: ${named}${more}; nothing was written`,
    mismatches.map((m) => ({ path: m.path, message: m.message })),
  );
}
