import { describe, expect, it } from 'vitest';
import {
  activationRefusal,
  diffPolicySources,
  parsePolicySource,
  rollbackRefusal,
  storedPolicyVersionLabel,
  ValidationError,
  type StoredVersionFacts,
} from '../src/index.js';

const labels = { before: 'version 1', after: 'version 2' };

describe('diffPolicySources', () => {
  it('should be empty for equal sources', () => {
    expect(diffPolicySources('a\nb\n', 'a\nb\n', labels)).toEqual({ text: '', added: 0, removed: 0 });
  });

  it('should show a changed line with three lines of context', () => {
    const before = ['1', '2', '3', '4', '5', '6', '7', '8'].join('\n') + '\n';
    const after = before.replace('5\n', 'five\n');
    const diff = diffPolicySources(before, after, labels);
    expect(diff).toMatchObject({ added: 1, removed: 1 });
    expect(diff.text).toBe(
      [
        '--- version 1',
        '+++ version 2',
        '@@ -2,7 +2,7 @@',
        ' 2',
        ' 3',
        ' 4',
        '-5',
        '+five',
        ' 6',
        ' 7',
        ' 8',
        '',
      ].join('\n'),
    );
  });

  it('should keep far-apart changes in separate hunks', () => {
    const lines = Array.from({ length: 40 }, (_, i) => `line ${i}`);
    const after = [...lines];
    after[2] = 'changed 2';
    after[30] = 'changed 30';
    const diff = diffPolicySources(lines.join('\n'), after.join('\n'), labels);
    expect(diff.text.match(/^@@/gm)).toHaveLength(2);
  });

  it('should show an insertion as added lines only', () => {
    const diff = diffPolicySources('a\nc\n', 'a\nb\nc\n', labels);
    expect(diff).toMatchObject({ added: 1, removed: 0 });
    expect(diff.text).toContain('@@ -1,2 +1,3 @@\n a\n+b\n c\n');
  });

  it('should diff against nothing', () => {
    const diff = diffPolicySources('', 'a\nb\n', { before: 'nothing', after: 'version 1' });
    expect(diff.text).toBe('--- nothing\n+++ version 1\n@@ -0,0 +1,2 @@\n+a\n+b\n');
  });

  it('should stay bounded on a huge middle (whole replacement, no quadratic table)', () => {
    const before = Array.from({ length: 3000 }, (_, i) => `a${i}`).join('\n');
    const after = Array.from({ length: 3000 }, (_, i) => `b${i}`).join('\n');
    const started = performance.now();
    const diff = diffPolicySources(before, after, labels);
    expect(diff).toMatchObject({ added: 3000, removed: 3000 });
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe('parsePolicySource', () => {
  it('should validate each kind against its own schema', () => {
    expect(parsePolicySource('supervisor', 'version: 3\n', 'p').version).toBe('3');
    expect(() => parsePolicySource('supervisor', 'thresholds:\n  max_retries: -1\n', 'p')).toThrow(
      ValidationError,
    );
    expect(() => parsePolicySource('writegate', 'nope: 1\n', 'p')).toThrow(/nope/);
    expect(parsePolicySource('lead-rules', '{}', 'p').version).toBe('1');
  });

  it('should label a stored version with its number', () => {
    expect(storedPolicyVersionLabel('1', 4)).toBe('1@v4');
  });
});

describe('activationRefusal', () => {
  const draft: StoredVersionFacts = {
    version: 3,
    status: 'draft',
    base_version: 2,
    pushed_by: 'api_key:1',
    pushed_by_owner: 'alice',
    activated_at: null,
  };
  const bob = { by: 'api_key:2', owner: 'bob' };

  it('should let a second person activate a draft pushed against the active version', () => {
    expect(activationRefusal(draft, { version: 2 }, bob)).toBeUndefined();
  });

  it('should refuse the pushing key and another key of the same owner (separation of duties)', () => {
    expect(activationRefusal(draft, { version: 2 }, { by: 'api_key:1', owner: 'alice' })?.kind).toBe(
      'forbidden',
    );
    expect(activationRefusal(draft, { version: 2 }, { by: 'api_key:9', owner: 'alice' })?.kind).toBe(
      'forbidden',
    );
  });

  it('should refuse a draft pushed against another version than the active one', () => {
    expect(activationRefusal(draft, { version: 4 }, bob)).toMatchObject({ kind: 'conflict' });
    expect(activationRefusal({ ...draft, base_version: null }, { version: 2 }, bob)?.kind).toBe('conflict');
  });

  it('should refuse what is not a draft', () => {
    for (const status of ['active', 'superseded', 'discarded'] as const)
      expect(activationRefusal({ ...draft, status }, { version: 2 }, bob)?.kind).toBe('conflict');
  });
});

describe('rollbackRefusal', () => {
  const base: StoredVersionFacts = {
    version: 1,
    status: 'superseded',
    base_version: null,
    pushed_by: 'bootstrap',
    pushed_by_owner: 'bootstrap',
    activated_at: new Date(),
  };
  it('should allow a version that was active once', () => {
    expect(rollbackRefusal(base)).toBeUndefined();
  });
  it('should refuse a draft or a discarded version (never approved) and the active one', () => {
    expect(rollbackRefusal({ ...base, status: 'draft', activated_at: null })?.kind).toBe('conflict');
    expect(rollbackRefusal({ ...base, status: 'discarded', activated_at: null })?.kind).toBe('conflict');
    expect(rollbackRefusal({ ...base, status: 'active' })?.kind).toBe('conflict');
  });
});
