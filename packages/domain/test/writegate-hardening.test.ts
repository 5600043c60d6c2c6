// WriteGate hardening: `.git` files anywhere, changed lines from a real diff, supply-chain files never LOW.
import { describe, expect, it } from 'vitest';
import {
  ChangePlanSchema,
  WriteGatePolicySchema,
  checkPathSafety,
  countChangedLines,
  evaluateWriteGate,
  writeGatePolicyHash,
  type FileChange,
  type WriteGateResult,
} from '../src/index.js';
import { supplyChainPaths } from '../src/executor/supply-chain.js';

const plan = ChangePlanSchema.parse({
  plan_id: 'plan-1',
  intent: 'docs',
  risk_level_proposed: 'LOW',
  rollback_plan: 'restore the previous files',
  verification_plan: { description: 'render the docs' },
  created_by: 'agent-7',
  confidence: 0.8,
});

function gate(
  changes: FileChange[],
  options: {
    policy?: Parameters<typeof WriteGatePolicySchema.parse>[0];
    current?: Record<string, string>;
  } = {},
): WriteGateResult {
  const policy = WriteGatePolicySchema.parse(options.policy ?? {});
  return evaluateWriteGate({
    plan,
    changeset: { changes },
    policy,
    policyHash: writeGatePolicyHash(policy),
    ...(options.current ? { currentContents: new Map(Object.entries(options.current)) } : {}),
  });
}
const create = (path: string, content = 'x\n'): FileChange => ({
  operation: 'create',
  path,
  new_content: content,
});
const codes = (result: WriteGateResult) => result.reasons.map((r) => r.code);
const lines = (n: number, tag = 'line') => Array.from({ length: n }, (_, i) => `${tag} ${i}\n`).join('');

describe('WriteGate: git metadata', () => {
  it.each(['docs/.git', '.git', 'a/b/.GIT', 'vendor/lib/.Git', 'sub/git~1', 'GIT~2/config', '.git/config'])(
    'should deny %s as git metadata, whatever the policy',
    (path) => {
      expect(checkPathSafety(path).map((i) => i.code)).toContain('PATH_GIT_METADATA');
      // Even a policy that forbids nothing and allows everything.
      const result = gate([create(path, 'gitdir: /tmp/elsewhere\n')], { policy: { forbidden_paths: [] } });
      expect(result.verdict).toBe('DENY');
      expect(codes(result)).toContain('PATH_GIT_METADATA');
    },
  );

  it.each([
    'docs/git-notes.md',
    '.gitignore',
    '.gitattributes',
    'docs/.github.md',
    'src/git/index.md',
    'a.git',
  ])('should not mistake %s for git metadata', (path) => {
    expect(checkPathSafety(path)).toEqual([]);
  });
});

describe('WriteGate: changed lines', () => {
  it('should count reordered lines as changed (a multiset comparison would say 0)', () => {
    const before = 'a\nb\nc\nd\n';
    const after = 'd\nc\nb\na\n';
    expect(
      countChangedLines({ operation: 'update', path: 'f', old_content: before, new_content: after }),
    ).toBeGreaterThanOrEqual(6);
    // Swapping two halves of a long file moves half of it.
    const half = lines(300, 'first') + lines(300, 'second');
    const swapped = lines(300, 'second') + lines(300, 'first');
    const result = gate([
      { operation: 'update', path: 'docs/a.md', old_content: half, new_content: swapped },
    ]);
    expect(result.stats.changed_lines).toBeGreaterThanOrEqual(600);
    expect(codes(result)).toContain('RISK_LARGE_CHANGE');
    expect(result.verdict).toBe('NEED_APPROVAL');
  });

  it('should count an unchanged file as 0 and a one-line edit as 2', () => {
    expect(
      countChangedLines({ operation: 'update', path: 'f', old_content: 'a\nb\n', new_content: 'a\nb\n' }),
    ).toBe(0);
    expect(
      countChangedLines({ operation: 'update', path: 'f', old_content: 'a\nb\n', new_content: 'a\nB\n' }),
    ).toBe(2);
  });

  it("should count a delete as the deleted file's lines, from disk when the agent leaves old_content out", () => {
    const deleted: FileChange = { operation: 'delete', path: 'docs/big.md', old_hash: 'a'.repeat(64) };
    expect(gate([deleted]).stats.changed_lines).toBe(0);
    const onDisk = gate([deleted], { current: { 'docs/big.md': lines(6000) } });
    expect(onDisk.stats.changed_lines).toBe(6000);
    expect(onDisk.verdict).toBe('DENY');
    expect(codes(onDisk)).toContain('TOO_MANY_LINES');
    // An understated old_content does not win over the disk.
    const lying: FileChange = { ...deleted, old_content: 'one line\n' };
    expect(gate([lying], { current: { 'docs/big.md': lines(6000) } }).stats.changed_lines).toBe(6000);
  });

  it('should diff an update against the disk, not the agent’s own old_content', () => {
    const update: FileChange = {
      operation: 'update',
      path: 'docs/a.md',
      old_content: lines(1000),
      new_content: lines(1000),
    };
    expect(gate([update]).stats.changed_lines).toBe(0);
    expect(gate([update], { current: { 'docs/a.md': lines(1000, 'other') } }).stats.changed_lines).toBe(2000);
  });

  it('should stop diffing past the limit and answer an upper bound over it', () => {
    const before = lines(3000, 'a');
    const after = lines(3000, 'b');
    const counted = countChangedLines(
      { operation: 'update', path: 'f', old_content: before, new_content: after },
      { limit: 100 },
    );
    expect(counted).toBe(6000);
  });
});

describe('WriteGate: supply-chain and tool-configuration files', () => {
  const hostile = [
    'package.json',
    'packages/app/package.json',
    'package-lock.json',
    'pnpm-lock.yaml',
    'yarn.lock',
    '.npmrc',
    '.yarnrc.yml',
    '.github/workflows/ci.yml',
    '.github/actions/setup/action.yml',
    '.gitlab-ci.yml',
    '.gitmodules',
    'vendor/evil/HEAD',
  ];
  // A policy that forbids and reviews nothing, allows every path and only asks from CRITICAL on.
  const lax = {
    forbidden_paths: [],
    allowed_paths: ['**'],
    approval: { always_review: [], risk_threshold: 'CRITICAL' as const },
  };

  it.each(hostile)('should make %s at least HIGH risk and NEED_APPROVAL, never LOW', (path) => {
    const result = gate([create(path, '{}\n')], { policy: lax });
    expect(result.risk_effective).toBe('HIGH');
    expect(result.verdict).toBe('NEED_APPROVAL');
    expect(codes(result)).toEqual(expect.arrayContaining(['RISK_SUPPLY_CHAIN', 'SUPPLY_CHAIN_REVIEW']));
  });

  it('should catch a bare repository built from objects/ and refs/ under one directory', () => {
    const repo = ['vendor/x/objects/ab/cdef', 'vendor/x/refs/heads/main', 'vendor/x/config'];
    expect(supplyChainPaths(repo)).toEqual(repo);
    expect(supplyChainPaths(['objects/ab/cd', 'refs/heads/main'])).toEqual([
      'objects/ab/cd',
      'refs/heads/main',
    ]);
    const result = gate(
      repo.map((p) => create(p)),
      { policy: lax },
    );
    expect(result.verdict).toBe('NEED_APPROVAL');
  });

  it.each([
    'src/package.json.md',
    'docs/package-json.md',
    'docs/npmrc.md',
    'docs/workflows/ci.md',
    'docs/github/workflows.md',
    'docs/head.md',
    'src/refs/index.md',
    'src/objects/index.md',
  ])('should leave the look-alike %s alone', (path) => {
    expect(supplyChainPaths([path])).toEqual([]);
    const result = gate([create(path)]);
    expect(codes(result)).not.toContain('RISK_SUPPLY_CHAIN');
    // Docs are allowed outright; sources are MEDIUM (they want health checks), never HIGH for their name.
    expect(result.risk_effective).toBe(path.startsWith('src/') ? 'MEDIUM' : 'LOW');
    if (!path.startsWith('src/')) expect(result.verdict).toBe('ALLOW');
  });
});
