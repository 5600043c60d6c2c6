/**
 * Step `validating`: everything that must hold before a byte is written — the verdict or approval stored at
 * submission, the checksum of the changes and the hash of the plan (and the approval's binding to both), the
 * WriteGate again with the executor's own policy and what is on disk (symlinks, special files), and
 * compare-and-swap on every file replaced or deleted. Throws the WardenError the change set is refused with.
 */
import { readStoredChangeSet } from '@warden/db';
import {
  ValidationError,
  assertCompareAndSwap,
  assertRecheckAllows,
  assertSubmissionVerdictAllows,
  checkPathSafety,
  evaluateWriteGate,
  verifyApprovalBinding,
  verifyChangesChecksum,
  verifyPlanHash,
  type FileChange,
  type PathFact,
} from '@warden/domain';
import { forEachLimit } from '../../concurrency.js';
import type { PathInspection } from '../../workspace-fs.js';
import type { Attempt, Pipeline, Validated } from '../context.js';

export async function validate(pipeline: Pipeline, at: Attempt): Promise<Validated> {
  const { recorder } = pipeline;
  const { row } = at;
  assertSubmissionVerdictAllows(row);
  const stored = readStored(row);
  const checksum = verifyChangesChecksum(row.checksum, stored.rawChanges);
  const planHash = verifyPlanHash(row.plan_hash, stored.plan);
  verifyApprovalBinding(row, { checksum, planHash });

  const inspections = await inspectPaths(pipeline, at, stored.changes);
  const pathFacts = new Map<string, PathFact[]>();
  // What is on disk counts the changed lines (a delete's whole file), not what the agent claims it was.
  const currentContents = new Map<string, string>();
  for (const [path, inspection] of inspections) {
    if (inspection.facts.length > 0) pathFacts.set(path, inspection.facts);
    if (inspection.state.exists) currentContents.set(path, inspection.state.content.toString('utf8'));
  }
  const verdict = evaluateWriteGate({
    plan: stored.plan,
    changeset: { changes: stored.changes },
    policy: at.policy.policy,
    policyHash: at.policy.hash,
    pathFacts,
    currentContents,
  });
  assertRecheckAllows(verdict, row.approval_state === 'approved');
  // Paths the lexical checks refused have no inspection, but the gate has denied them by now.
  assertCompareAndSwap(stored.changes, (path) => inspections.get(path)!.state);

  // Recorded by the `backing_up` step, in the transaction that commits the journal: nothing happens in between
  // that a crash could leave half-done, and it saves a transaction.
  const step = recorder.entry(at, {
    step: 'validating',
    status: 'ok',
    message: `checksum, plan hash, approval, WriteGate (${verdict.verdict}, risk ${verdict.risk_effective}) and compare-and-swap of ${stored.changes.length} file(s) hold`,
    detail: {
      checksum,
      plan_hash: planHash,
      verdict: verdict.verdict,
      risk_effective: verdict.risk_effective,
      policy_hash: verdict.policy_hash,
      policy_version: verdict.policy_version,
    },
    event: 'CHANGESET_VALIDATED',
  });
  return { plan: stored.plan, changes: stored.changes, inspections, step };
}

function readStored(row: Attempt['row']): ReturnType<typeof readStoredChangeSet> {
  try {
    return readStoredChangeSet(row);
  } catch (error) {
    throw new ValidationError(
      `the stored change set is not readable: ${(error as Error).message.split('\n')[0]}`,
    );
  }
}

/** What is on disk now at each path. Paths that fail the lexical checks are never touched, not even read. */
async function inspectPaths(
  { options }: Pipeline,
  at: Attempt,
  changes: readonly FileChange[],
): Promise<Map<string, PathInspection>> {
  const inspections = new Map<string, PathInspection>();
  const session = at.fs.session();
  try {
    await forEachLimit(changes, options.writeConcurrency, async (change) => {
      if (checkPathSafety(change.path).length > 0 || inspections.has(change.path)) return;
      inspections.set(change.path, await session.inspect(change.path));
    });
  } finally {
    await session.close();
  }
  return inspections;
}
