import type { FileChange } from './change-set.js';

/** Lines in a text; a trailing newline does not start another line. */
export function countLines(text: string): number {
  if (text === '') return 0;
  const lines = text.split('\n').length;
  return text.endsWith('\n') ? lines - 1 : lines;
}

/**
 * Lines a change adds plus lines it removes, as a diff would count them (approximately: lines are compared as
 * a multiset, so moved lines count as unchanged). Linear time, so the gate stays cheap on large files.
 * A create counts its new lines; a delete counts `old_content`'s lines when given, else none; an update
 * without `old_content` counts every new line.
 */
export function countChangedLines(change: FileChange): number {
  if (change.operation === 'create') return countLines(change.new_content ?? '');
  if (change.operation === 'delete') return countLines(change.old_content ?? '');
  if (change.old_content === undefined) return countLines(change.new_content ?? '');
  return lineDiffSize(change.old_content, change.new_content ?? '');
}

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (text.endsWith('\n')) lines.pop();
  return lines;
}

function lineDiffSize(before: string, after: string): number {
  const remaining = new Map<string, number>();
  for (const line of splitLines(before)) remaining.set(line, (remaining.get(line) ?? 0) + 1);
  let added = 0;
  for (const line of splitLines(after)) {
    const count = remaining.get(line) ?? 0;
    if (count > 0) remaining.set(line, count - 1);
    else added += 1;
  }
  let removed = 0;
  for (const count of remaining.values()) removed += count;
  return added + removed;
}
