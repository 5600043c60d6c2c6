/**
 * A unified line diff between two policy sources, stored with every pushed draft so a reviewer sees exactly
 * what would change before approving it. Pure and bounded: common head and tail lines are set aside first,
 * and a middle too large for the line-by-line table is shown as removed then added whole.
 */

/** Lines of context kept around each change. */
const CONTEXT = 3;
/** Largest middle (lines before × lines after) compared line by line; larger ones are replaced whole. */
const MAX_TABLE_CELLS = 4_000_000;

type Op = { kind: ' ' | '-' | '+'; line: string; before: number; after: number };

export interface PolicyDiff {
  /** The unified diff (`--- before`, `+++ after`, `@@` hunks); empty when the sources are equal. */
  text: string;
  added: number;
  removed: number;
}

/** Diffs `before` against `after`, line by line, labelled with the given names. */
export function diffPolicySources(
  before: string,
  after: string,
  labels: { before: string; after: string },
): PolicyDiff {
  const a = splitLines(before);
  const b = splitLines(after);
  const ops = lineOps(a, b);
  const added = ops.filter((op) => op.kind === '+').length;
  const removed = ops.filter((op) => op.kind === '-').length;
  if (added === 0 && removed === 0) return { text: '', added, removed };
  const lines = [`--- ${labels.before}`, `+++ ${labels.after}`];
  for (const hunk of hunksOf(ops)) {
    const first = hunk[0]!;
    const beforeCount = hunk.filter((op) => op.kind !== '+').length;
    const afterCount = hunk.filter((op) => op.kind !== '-').length;
    lines.push(
      `@@ -${beforeCount === 0 ? first.before : first.before + 1},${beforeCount} +${afterCount === 0 ? first.after : first.after + 1},${afterCount} @@`,
    );
    for (const op of hunk) lines.push(`${op.kind}${op.line}`);
  }
  return { text: lines.join('\n') + '\n', added, removed };
}

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split(/\r?\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Every line of both sides as kept, removed or added, in order; `before`/`after` are 0-based line indexes. */
function lineOps(a: readonly string[], b: readonly string[]): Op[] {
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (
    tail < a.length - head &&
    tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  )
    tail++;
  const ops: Op[] = [];
  for (let i = 0; i < head; i++) ops.push({ kind: ' ', line: a[i]!, before: i, after: i });
  const midA = a.slice(head, a.length - tail);
  const midB = b.slice(head, b.length - tail);
  for (const op of middleOps(midA, midB))
    ops.push({ ...op, before: op.before + head, after: op.after + head });
  for (let k = tail; k > 0; k--)
    ops.push({ kind: ' ', line: a[a.length - k]!, before: a.length - k, after: b.length - k });
  return ops;
}

/** The longest-common-subsequence walk over the middle; too large a middle is replaced whole. */
function middleOps(a: readonly string[], b: readonly string[]): Op[] {
  const n = a.length;
  const m = b.length;
  if (n * m > MAX_TABLE_CELLS) {
    return [
      ...a.map((line, i) => ({ kind: '-' as const, line, before: i, after: 0 })),
      ...b.map((line, j) => ({ kind: '+' as const, line, before: n, after: j })),
    ];
  }
  // lcs[i][j]: the longest common subsequence of a[i..] and b[j..], one flat array.
  const width = m + 1;
  const lcs = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[i * width + j] =
        a[i] === b[j]
          ? lcs[(i + 1) * width + j + 1]! + 1
          : Math.max(lcs[(i + 1) * width + j]!, lcs[i * width + j + 1]!);
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      ops.push({ kind: ' ', line: a[i]!, before: i, after: j });
      i++;
      j++;
    } else if (i < n && (j === m || lcs[(i + 1) * width + j]! >= lcs[i * width + j + 1]!)) {
      // Removals before additions, as in every unified diff.
      ops.push({ kind: '-', line: a[i]!, before: i, after: j });
      i++;
    } else {
      ops.push({ kind: '+', line: b[j]!, before: i, after: j });
      j++;
    }
  }
  return ops;
}

/** Groups changes with up to {@link CONTEXT} kept lines around them; changes closer than that share a hunk. */
function hunksOf(ops: readonly Op[]): Op[][] {
  const changed = ops.map((op, index) => (op.kind === ' ' ? -1 : index)).filter((index) => index >= 0);
  const hunks: Op[][] = [];
  let start = -1;
  let end = -1;
  for (const index of changed) {
    if (start >= 0 && index - CONTEXT <= end + CONTEXT) {
      end = index;
      continue;
    }
    if (start >= 0)
      hunks.push(ops.slice(Math.max(0, start - CONTEXT), Math.min(ops.length, end + CONTEXT + 1)));
    start = index;
    end = index;
  }
  if (start >= 0)
    hunks.push(ops.slice(Math.max(0, start - CONTEXT), Math.min(ops.length, end + CONTEXT + 1)));
  return hunks;
}
