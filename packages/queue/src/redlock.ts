import { Redlock, type Settings } from '@sesamecare-oss/redlock';
import type { Redis } from 'ioredis';

export { ResourceLockedError, ExecutionError as LockExecutionError, type Lock } from '@sesamecare-oss/redlock';

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
