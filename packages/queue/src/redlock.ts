import { Redlock, type Settings } from '@sesamecare-oss/redlock';
import type { Redis } from 'ioredis';

export {
  ResourceLockedError,
  ExecutionError as LockExecutionError,
  type Lock,
} from '@sesamecare-oss/redlock';

/**
 * A Redlock over the given clients. With one Redis (the usual deployment) it is a single-instance lock;
 * Redlock gives no fencing token, so paths where a stale holder could do harm must also check one from
 * Postgres (the executor does).
 *
 * Defaults: `retryCount` 0 (callers decide whether to wait), `automaticExtensionThreshold` 500 ms.
 */
export function createRedlock(clients: Redis[], settings: Partial<Settings> = {}): Redlock {
  const redlock = new Redlock(clients, { retryCount: 0, automaticExtensionThreshold: 500, ...settings });
  redlock.on('error', () => {});
  return redlock;
}

/**
 * Whether a failed `acquire`/`using` means someone else holds the lock. Redlock reports a held lock and an
 * unreachable Redis the same way (an `ExecutionError` after its attempts); the votes against tell them apart: a
 * `ResourceLockedError` vote means the lock is held, so the caller can leave the work to its holder.
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
