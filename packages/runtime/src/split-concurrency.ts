/**
 * Splits a concurrency budget between `parts` BullMQ workers that take jobs off one queue side by side (a
 * BullMQ worker fetches its jobs one at a time, so several fetch sooner than one): each gets `total / parts`,
 * the first few one more, so the shares add up to `total` exactly. Never more parts than `total` (each share is
 * at least 1); at least one part.
 */
export function splitConcurrency(total: number, parts: number): number[] {
  if (!Number.isInteger(total) || total < 1)
    throw new RangeError(`total must be a positive integer, got ${total}`);
  const count = Math.max(1, Math.min(Math.floor(parts), total));
  const base = Math.floor(total / count);
  return Array.from({ length: count }, (_, i) => base + (i < total % count ? 1 : 0));
}
