import { Redlock, type Settings } from '@sesamecare-oss/redlock';
import { createRedis, type RedisConnection } from './redis.js';

export {
  ResourceLockedError,
  ExecutionError as LockExecutionError,
  type Lock,
} from '@sesamecare-oss/redlock';

/**
 * A Redlock over the given clients. With one Redis (the usual deployment) it is a single-instance lock; over
 * several independent servers (`REDLOCK_URLS`, see {@link openLockClients}) a lock needs a majority of them,
 * so it survives the loss of a minority. Redlock gives no fencing token, so paths where a stale holder could
 * do harm must also check one from Postgres (the executor does).
 *
 * Defaults: `retryCount` 0 (callers decide whether to wait), `automaticExtensionThreshold` 500 ms.
 */
export function createRedlock(clients: RedisConnection[], settings: Partial<Settings> = {}): Redlock {
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

/** The Redis clients locks are taken on, and how to let go of the ones opened for them. */
export interface LockClients {
  clients: RedisConnection[];
  /** Disconnects the clients opened from `REDLOCK_URLS`; a fallback client stays with its owner. */
  close(): void;
}

/**
 * The clients for {@link createRedlock}: one per URL of `REDLOCK_URLS` (independent Redis servers, each one
 * vote), or the one `fallback()` returns (the service's main Redis, owned by the caller) when the list is empty.
 */
export function openLockClients(urls: readonly string[], fallback: () => RedisConnection): LockClients {
  if (urls.length === 0) return { clients: [fallback()], close: () => {} };
  const clients = urls.map((url) => createRedis(url, 'general'));
  return { clients, close: () => clients.forEach((client) => client.disconnect()) };
}
