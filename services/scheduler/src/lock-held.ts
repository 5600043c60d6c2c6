/**
 * Redlock reports a lock someone else holds and an unreachable Redis the same way (an `ExecutionError` after
 * its attempts); the votes against tell them apart: a `ResourceLockedError` vote means the lock is held.
 */
export async function isLockHeldError(error: unknown): Promise<boolean> {
  if ((error as { name?: unknown }).name === 'ResourceLockedError') return true;
  const attempts = (error as { attempts?: unknown }).attempts;
  if (!Array.isArray(attempts) || attempts.length === 0) return false;
  const stats = await Promise.allSettled(attempts as Array<Promise<{ votesAgainst?: Map<unknown, Error> }>>);
  return stats.some(
    (result) =>
      result.status === 'fulfilled' &&
      [...(result.value.votesAgainst?.values() ?? [])].some((vote) => vote?.name === 'ResourceLockedError'),
  );
}
