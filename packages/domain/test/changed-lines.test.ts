import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { countChangedLines } from '../src/index.js';

/** Removed plus added lines of the shortest edit script, from the longest common subsequence (quadratic, plain). */
function referenceChangedLines(before: readonly string[], after: readonly string[]): number {
  const lcs = Array.from({ length: before.length + 1 }, () => new Array<number>(after.length + 1).fill(0));
  for (let i = before.length - 1; i >= 0; i--)
    for (let j = after.length - 1; j >= 0; j--)
      lcs[i]![j] =
        before[i] === after[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  return before.length + after.length - 2 * lcs[0]![0]!;
}

const text = (lines: readonly string[]) => lines.map((line) => `${line}\n`).join('');

describe('countChangedLines', () => {
  it('should count a file rewritten outright as every old line plus every new one', () => {
    const before = Array.from({ length: 50 }, (_, i) => `v1 line ${i}`);
    const after = Array.from({ length: 50 }, (_, i) => `v2 line ${i}`);
    const update = {
      operation: 'update' as const,
      path: 'f',
      old_content: text(before),
      new_content: text(after),
    };
    expect(countChangedLines(update)).toBe(100);
    // Same head and tail, rewritten middle: only the middle counts.
    const framed = {
      ...update,
      old_content: text(['h', ...before, 't']),
      new_content: text(['h', ...after, 't']),
    };
    expect(countChangedLines(framed)).toBe(100);
  });

  it('should agree with a plain longest-common-subsequence count, rewrites and shared lines alike', () => {
    // Few distinct lines make shared lines likely; two alphabets make whole rewrites likely too.
    const lines = (alphabet: string[]) => fc.array(fc.constantFrom(...alphabet), { maxLength: 14 });
    fc.assert(
      fc.property(
        lines(['a', 'b', 'c', 'd']),
        fc.oneof(lines(['a', 'b', 'c', 'd']), lines(['w', 'x', 'y', 'z']), lines(['a', 'x'])),
        (before, after) => {
          const counted = countChangedLines({
            operation: 'update',
            path: 'f',
            old_content: text(before),
            new_content: text(after),
          });
          expect(counted).toBe(referenceChangedLines(before, after));
        },
      ),
      { numRuns: 500 },
    );
  });
});
