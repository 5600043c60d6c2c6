import type { FileChange } from './change-set.js';

/** Lines in a text; a trailing newline does not start another line. */
export function countLines(text: string): number {
  return splitLines(text).length;
}

export interface ChangedLineOptions {
  /**
   * What is in the file now, when known (the executor reads it from disk): a delete counts these lines, and an
   * update without `old_content` is diffed against them. Takes precedence over `old_content`, which the agent
   * wrote and could understate. @defaultValue unknown (`old_content` is used)
   */
  current?: string;
  /**
   * Past this many changed lines in one file the exact count no longer matters (the gate denies or escalates
   * either way), so the diff stops and answers an upper bound instead: every old line plus every new one.
   * Keeps the gate's cost bounded on large, heavily rewritten files. @defaultValue `10000`
   */
  limit?: number;
}

const DEFAULT_LIMIT = 10_000;

/**
 * Lines a change adds plus lines it removes, from a real line diff (shortest edit script): a moved or
 * reordered line counts as removed and added, so shuffling a file cannot pass for a small change.
 * A create counts its new lines; a delete counts every line of the deleted file (`options.current`, else
 * `old_content`, else none: the executor re-checks with what is on disk); an update without any old text
 * counts every new line.
 */
export function countChangedLines(change: FileChange, options: ChangedLineOptions = {}): number {
  const before = options.current ?? change.old_content;
  if (change.operation === 'create') return countLines(change.new_content ?? '');
  if (change.operation === 'delete') return countLines(before ?? '');
  if (before === undefined) return countLines(change.new_content ?? '');
  return lineDiffSize(before, change.new_content ?? '', options.limit ?? DEFAULT_LIMIT);
}

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (text.endsWith('\n')) lines.pop();
  return lines;
}

function lineDiffSize(before: string, after: string, limit: number): number {
  if (before === after) return 0;
  const [a, b] = internLines(splitLines(before), splitLines(after));
  // Common head and tail cost nothing; most edits touch a small middle.
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start += 1;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA -= 1;
    endB -= 1;
  }
  const oldMiddle = a.subarray(start, endA);
  const newMiddle = b.subarray(start, endB);
  // A middle rewritten outright (no line in common, the usual shape of a regenerated file) is every line removed
  // and every line added: exactly what the diff would find, after O((N+M)²) work instead of O(N+M).
  if (!sharesAnyLine(oldMiddle, newMiddle)) return oldMiddle.length + newMiddle.length;
  // Over the limit: every line counts, an upper bound of the real edit size (and over the limit itself).
  return editDistance(oldMiddle, newMiddle, Math.max(1, limit)) ?? oldMiddle.length + newMiddle.length;
}

/** True when some line of `b` is also a line of `a` (lines as interned ids, so each below the count of ids). */
function sharesAnyLine(a: Int32Array, b: Int32Array): boolean {
  let maxId = 0;
  for (const id of a) if (id > maxId) maxId = id;
  const inA = new Uint8Array(maxId + 1);
  for (const id of a) inA[id] = 1;
  for (const id of b) if (id <= maxId && inA[id] === 1) return true;
  return false;
}

/** Lines as small integers (equal lines, equal numbers), so the diff compares numbers, not strings. */
function internLines(before: string[], after: string[]): [Int32Array, Int32Array] {
  const ids = new Map<string, number>();
  const intern = (lines: string[]) =>
    Int32Array.from(lines, (line) => {
      let id = ids.get(line);
      if (id === undefined) ids.set(line, (id = ids.size));
      return id;
    });
  return [intern(before), intern(after)];
}

/**
 * Lines removed plus lines added by the shortest line diff (Myers' O((N+M)·D) algorithm, distance only, no
 * script): the length of the shortest edit script, or undefined when it is longer than `max`. Typed arrays and
 * no path objects keep it fast enough to run on every submission: work grows with `max`, not with file size.
 */
function editDistance(a: Int32Array, b: Int32Array, limit: number): number | undefined {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0) return n + m <= limit ? n + m : undefined;
  // No script is longer than n + m: the diagonals beyond never exist. Sizing by the limit instead (a million
  // lines under a generous max_patch_lines) allocated and filled megabytes per file.
  const max = Math.min(limit, n + m);
  const NONE = -1;
  const offset = max + 1;
  // furthest[offset + k]: the furthest x reached on diagonal k = x - y with the current number of edits.
  const furthest = new Int32Array(2 * max + 3).fill(NONE);
  for (let d = 0; d <= max; d++) {
    for (let k = -d; k <= d; k += 2) {
      let x: number;
      if (d === 0) x = 0;
      else {
        // Down (an added line) from diagonal k+1, or right (a removed line) from diagonal k-1, whichever goes further.
        let down = k < d ? furthest[offset + k + 1]! : NONE;
        if (down !== NONE && down - k > m) down = NONE;
        let right = k > -d && furthest[offset + k - 1]! !== NONE ? furthest[offset + k - 1]! + 1 : NONE;
        if (right > n) right = NONE;
        x = Math.max(down, right);
        if (x === NONE) {
          furthest[offset + k] = NONE;
          continue;
        }
      }
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x += 1;
        y += 1;
      }
      furthest[offset + k] = x;
      if (x === n && y === m) return d;
    }
  }
  return undefined;
}
