// The executor's checks before it writes: who may run, checksum, plan hash, approval binding, the WriteGate
// re-check, compare-and-swap — and the results it records.
import { describe, expect, it } from 'vitest';
import {
  CHANGESET_STEPS,
  ChangePlanSchema,
  ChangeSetStateError,
  ChecksumMismatchError,
  CompareAndSwapError,
  EXECUTION_STEPS,
  SUBMISSION_STEPS,
  WriteGateDeniedError,
  assertCompareAndSwap,
  assertRecheckAllows,
  assertSubmissionVerdictAllows,
  checkForResult,
  computeChangeSetChecksum,
  computePlanHash,
  contentSha256,
  countFileChanges,
  executionResult,
  findCompareAndSwapMismatches,
  isExecutableChangeSet,
  replayedExecutionResult,
  totalCheckDuration,
  verifyApprovalBinding,
  verifyChangesChecksum,
  verifyPlanHash,
  type CheckOutcome,
  type FileChange,
  type ObservedFile,
  type WriteGateResult,
} from '../src/index.js';

const plan = ChangePlanSchema.parse({
  plan_id: 'plan-1',
  intent: 'document the release',
  risk_level_proposed: 'LOW',
  created_by: 'agent-7',
  confidence: 0.8,
});

const changes: FileChange[] = [
  { operation: 'create', path: 'docs/new.md', new_content: 'new\n' },
  { operation: 'update', path: 'docs/old.md', old_content: 'old\n', new_content: 'newer\n' },
  { operation: 'delete', path: 'docs/gone.md', old_hash: contentSha256('gone\n') },
];

/** The files as the change set expects them: nothing at the create, the old bytes at the update and delete. */
const expectedDisk: Record<string, ObservedFile> = {
  'docs/new.md': { exists: false },
  'docs/old.md': { exists: true, hash: contentSha256('old\n') },
  'docs/gone.md': { exists: true, hash: contentSha256('gone\n') },
};
const on = (disk: Record<string, ObservedFile>) => (path: string) => disk[path] ?? { exists: false };

function verdict(overrides: Partial<WriteGateResult> = {}): WriteGateResult {
  return {
    verdict: 'ALLOW',
    risk_effective: 'LOW',
    reasons: [],
    policy_hash: 'p'.repeat(64),
    gate_version: '1',
    stats: { files: 1, changed_lines: 1, deletes: 0 },
    ...overrides,
  };
}

function check(overrides: Partial<CheckOutcome> = {}): CheckOutcome {
  return {
    name: 'npm test',
    kind: 'verification',
    ok: true,
    duration_ms: 10,
    detail: 'exit 0',
    ...overrides,
  };
}

describe('which change sets the executor may take', () => {
  it.each([
    ['ALLOW', 'not_required', true],
    ['NEED_APPROVAL', 'approved', true],
    ['NEED_APPROVAL', 'pending', false],
    ['NEED_APPROVAL', 'rejected', false],
    ['DENY', 'not_required', false],
  ])('should say a change set with verdict %s and approval %s is executable: %s', (v, approval, expected) => {
    expect(isExecutableChangeSet({ verdict: v, approval_state: approval })).toBe(expected);
  });

  it('should refuse a change set denied at submission, and one that needs an approval it does not have', () => {
    expect(() => assertSubmissionVerdictAllows({ verdict: 'DENY', approval_state: 'approved' })).toThrow(
      WriteGateDeniedError,
    );
    expect(() =>
      assertSubmissionVerdictAllows({ verdict: 'NEED_APPROVAL', approval_state: 'pending' }),
    ).toThrow(ChangeSetStateError);
    expect(() =>
      assertSubmissionVerdictAllows({ verdict: 'NEED_APPROVAL', approval_state: 'approved' }),
    ).not.toThrow();
    expect(() =>
      assertSubmissionVerdictAllows({ verdict: 'ALLOW', approval_state: 'not_required' }),
    ).not.toThrow();
  });
});

describe('checksum, plan hash and approval binding', () => {
  const checksum = computeChangeSetChecksum(changes);
  const planHash = computePlanHash(plan);

  it('should return the checksum when the stored changes still hash to it', () => {
    expect(verifyChangesChecksum(checksum, changes)).toBe(checksum);
  });

  it('should hash the changes as stored, key order aside', () => {
    const reordered = changes.map((c) => Object.fromEntries(Object.entries(c).reverse()));
    expect(verifyChangesChecksum(checksum, reordered)).toBe(checksum);
  });

  it('should refuse changes edited after their checksum, saying nothing was written', () => {
    const edited = [...changes.slice(0, 2), { ...changes[2]!, path: 'docs/other.md' }];
    expect(() => verifyChangesChecksum(checksum, edited)).toThrow(ChecksumMismatchError);
    expect(() => verifyChangesChecksum(checksum, edited)).toThrow(
      /^checksum mismatch: change set tampered \(stored checksum [0-9a-f]{64}, the changes hash to [0-9a-f]{64}\); nothing was written$/,
    );
  });

  it('should refuse a plan changed after submission', () => {
    expect(verifyPlanHash(planHash, plan)).toBe(planHash);
    expect(() => verifyPlanHash(planHash, { ...plan, intent: 'something else' })).toThrow(
      /^plan hash mismatch/,
    );
  });

  it('should hold an approval to the checksum and plan hash it was given for', () => {
    const approved = {
      approval_state: 'approved',
      approval_checksum: checksum,
      approval_plan_hash: planHash,
    };
    expect(() => verifyApprovalBinding(approved, { checksum, planHash })).not.toThrow();
    expect(() => verifyApprovalBinding(approved, { checksum: 'c'.repeat(64), planHash })).toThrow(
      /tampered after approval/,
    );
    expect(() => verifyApprovalBinding(approved, { checksum, planHash: 'h'.repeat(64) })).toThrow(
      ChecksumMismatchError,
    );
  });

  it('should not look at the binding of a change set that is not approved', () => {
    const none = { approval_state: 'not_required', approval_checksum: null, approval_plan_hash: null };
    expect(() => verifyApprovalBinding(none, { checksum, planHash })).not.toThrow();
  });
});

describe('the WriteGate re-check', () => {
  const deny = {
    step: 'forbidden_paths' as const,
    outcome: 'deny' as const,
    code: 'FORBIDDEN_PATH',
    message: '.env is forbidden',
  };
  const needApproval = {
    step: 'gating' as const,
    outcome: 'need_approval' as const,
    code: 'RISK_THRESHOLD',
    message: 'risk HIGH needs a person',
  };

  it('should let an ALLOW through', () => {
    expect(() => assertRecheckAllows(verdict(), false)).not.toThrow();
  });

  it('should refuse a DENY, naming only the denying reasons but listing every blocking one', () => {
    const result = verdict({ verdict: 'DENY', reasons: [deny, needApproval] });
    expect(() => assertRecheckAllows(result, true)).toThrow(
      'the WriteGate re-check denied the change set: .env is forbidden',
    );
    try {
      assertRecheckAllows(result, true);
    } catch (error) {
      expect((error as WriteGateDeniedError).details).toEqual([
        { path: 'forbidden_paths', message: 'FORBIDDEN_PATH: .env is forbidden' },
        { path: 'gating', message: 'RISK_THRESHOLD: risk HIGH needs a person' },
      ]);
    }
  });

  it('should refuse a NEED_APPROVAL for a change set let through without approval, and allow it once approved', () => {
    const result = verdict({ verdict: 'NEED_APPROVAL', reasons: [needApproval] });
    expect(() => assertRecheckAllows(result, false)).toThrow(
      "the executor's WriteGate policy requires approval: risk HIGH needs a person",
    );
    expect(() => assertRecheckAllows(result, true)).not.toThrow();
  });
});

describe('compare-and-swap', () => {
  it('should find nothing when every file is as the change set expects', () => {
    expect(findCompareAndSwapMismatches(changes, on(expectedDisk))).toEqual([]);
    expect(() => assertCompareAndSwap(changes, on(expectedDisk))).not.toThrow();
  });

  it('should refuse a create over an existing file, and an update or delete of a missing or changed one', () => {
    const disk: Record<string, ObservedFile> = {
      'docs/new.md': { exists: true, hash: contentSha256('someone else\n') },
      'docs/old.md': { exists: true, hash: contentSha256('edited meanwhile\n') },
      'docs/gone.md': { exists: false },
    };
    expect(findCompareAndSwapMismatches(changes, on(disk))).toEqual([
      { path: 'docs/new.md', message: 'exists already; a create never overwrites' },
      {
        path: 'docs/old.md',
        message: `changed since the change set was made (now ${contentSha256('edited meanwhile\n')}, expected ${contentSha256('old\n')})`,
      },
      { path: 'docs/gone.md', message: 'does not exist' },
    ]);
    expect(() => assertCompareAndSwap(changes, on(disk))).toThrow(CompareAndSwapError);
    expect(() => assertCompareAndSwap(changes, on(disk))).toThrow(/"docs\/old.md" changed since/);
  });

  it('should name ten files in the message and count the rest, with every file in the details', () => {
    const many: FileChange[] = Array.from({ length: 13 }, (_, i) => ({
      operation: 'create',
      path: `f${i}.md`,
      new_content: 'x',
    }));
    const everywhere = () => ({ exists: true, hash: contentSha256('x') }) as const;
    try {
      assertCompareAndSwap(many, everywhere);
      expect.unreachable();
    } catch (error) {
      expect((error as CompareAndSwapError).message).toMatch(
        /"f9.md" exists already[^"]* and 3 more; nothing was written$/,
      );
      expect((error as CompareAndSwapError).message).not.toContain('"f10.md"');
      expect((error as CompareAndSwapError).details).toHaveLength(13);
    }
  });
});

describe('execution results', () => {
  it('should count creates, updates and deletes', () => {
    expect(countFileChanges(changes)).toEqual({ created: 1, updated: 1, deleted: 1 });
  });

  it("should drop a passing check's output and keep only the tail of a failing one's", () => {
    expect(checkForResult(check({ output: 'all good' }))).toEqual(check());
    const long = 'x'.repeat(3000) + 'the end';
    const kept = checkForResult(check({ ok: false, detail: 'exit 1', output: long }));
    expect(kept.output).toHaveLength(2000);
    expect(kept.output!.endsWith('the end')).toBe(true);
    expect(checkForResult(check({ ok: false, output: '' }))).not.toHaveProperty('output');
  });

  it('should add up the time checks took', () => {
    expect(totalCheckDuration([check({ duration_ms: 5 }), check({ duration_ms: 7 })])).toBe(12);
    expect(totalCheckDuration([])).toBe(0);
  });

  it('should build a result where what is not given did not happen', () => {
    expect(executionResult({ outcome: 'failed' })).toEqual({
      outcome: 'failed',
      files: { created: 0, updated: 0, deleted: 0 },
      checks: [],
      apply_ms: null,
      rollback_ms: null,
      replayed_from: null,
    });
  });

  it('should replay a stored result as completed, marked with where it came from', () => {
    const stored = executionResult({
      outcome: 'completed',
      files: { created: 2, updated: 0, deleted: 1 },
      checks: [check()],
      applyMs: 42,
    });
    expect(replayedExecutionResult(stored, 'cs-1')).toEqual({ ...stored, replayed_from: 'cs-1' });
    expect(replayedExecutionResult(null, 'cs-1')).toEqual(
      executionResult({ outcome: 'completed', replayedFrom: 'cs-1' }),
    );
  });
});

describe('the steps of a change set', () => {
  it('should list submission steps, then execution steps in the order they run', () => {
    expect(CHANGESET_STEPS).toEqual([...SUBMISSION_STEPS, ...EXECUTION_STEPS]);
    const order = (step: (typeof EXECUTION_STEPS)[number]) => EXECUTION_STEPS.indexOf(step);
    expect(order('idempotency')).toBe(0);
    expect(order('locked')).toBeLessThan(order('validating'));
    expect(order('backing_up')).toBeLessThan(order('applying'));
    expect(order('verifying')).toBeLessThan(order('health_checking'));
    expect(order('failed')).toBeLessThan(order('rollback'));
    expect(new Set(CHANGESET_STEPS).size).toBe(CHANGESET_STEPS.length);
  });
});
