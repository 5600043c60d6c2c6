/**
 * Background passes that replicas take turns at: one replica holds a Redlock and does the pass, the others
 * skip it (the holder is doing the same work). The work is safe to repeat anyway; the lock only spares the
 * effort.
 */
import { isLockHeldError, type createRedlock } from '@warden/queue';

export type Redlock = ReturnType<typeof createRedlock>;

/** Runs `work` holding the lock `key`; undefined, without running it, when another replica holds the lock. */
export async function inLockTurn<T>(
  redlock: Redlock,
  key: string,
  ttlMs: number,
  work: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await redlock.using([key], ttlMs, work);
  } catch (error) {
    if (await isLockHeldError(error)) return undefined;
    throw error;
  }
}
