/**
 * The single-flight lock of lead scans: one scan per tenant and window kind at a time, so two scans of one
 * window never race to open the same follow-ups (docs/lead-miner.md, "How a scan works"). Held in Redis through
 * Redlock and extended while the scan runs. Written against the shape of a Redlock (the
 * `@sesamecare-oss/redlock` one `@warden/queue` creates) rather than its class, so tests can hand in anything
 * with the same shape.
 */
import { isLockHeldError } from '@warden/queue/locks';
import { LeadScanLockUnavailableError } from './errors.js';

/** A held lock. `signal` aborts when the lock could not be extended and may have passed to someone else. */
export interface LeadScanLease {
  readonly signal: AbortSignal;
  /** Releases the lock; never throws (an unreleased lock expires with its TTL). */
  release(): Promise<void>;
}

export interface LeadScanLock {
  /** Takes the lock or resolves `undefined` when another holder has it. Rejects when Redis cannot be asked. */
  tryAcquire(key: string): Promise<LeadScanLease | undefined>;
}

/** The parts of a Redlock `Lock` used here. */
export interface RedlockLockLike {
  expiration: number;
  extend(duration: number): Promise<RedlockLockLike>;
  release(): Promise<unknown>;
}

/** The part of a Redlock used here (`acquire` with no retries: a busy lock is an answer, not a wait). */
export interface RedlockLike {
  acquire(
    resources: string[],
    duration: number,
    settings?: { retryCount?: number },
  ): Promise<RedlockLockLike>;
}

export interface RedlockLeadScanLockOptions {
  /** Lock lifetime; renewed every third of it while the scan runs. @defaultValue `30000` */
  ttlMs?: number;
}

/** The Redis key of a scan's lock: `lock:lead-scan:<prefix>:<tenant>:<window kind>`. */
export function leadScanLockKey(prefix: string, tenantId: string, windowKind: string): string {
  return `lock:lead-scan:${prefix}:${tenantId}:${windowKind}`;
}

/**
 * A {@link LeadScanLock} over a Redlock. Redlock reports a held lock and an unreachable Redis the same way (a
 * failed quorum); `isLockHeldError` tells them apart by the votes against: a held lock is an answer
 * (`undefined`), an unreachable Redis a {@link LeadScanLockUnavailableError}.
 */
export function redlockLeadScanLock(
  redlock: RedlockLike,
  options: RedlockLeadScanLockOptions = {},
): LeadScanLock {
  const ttl = options.ttlMs ?? 30_000;
  return {
    async tryAcquire(key) {
      let lock: RedlockLockLike;
      try {
        lock = await redlock.acquire([key], ttl, { retryCount: 0 });
      } catch (error) {
        if (await isLockHeldError(error)) return undefined;
        throw new LeadScanLockUnavailableError(`cannot take the scan lock in Redis: ${describe(error)}`);
      }
      const controller = new AbortController();
      let extending: Promise<void> | undefined;
      const timer = setInterval(
        () => {
          extending ??= lock
            .extend(ttl)
            .then((next) => {
              lock = next;
            })
            .catch((error: unknown) => {
              // Still ours until it expires; a later attempt may succeed. Past expiry, someone else may hold it.
              if (lock.expiration <= Date.now()) {
                clearInterval(timer);
                controller.abort(
                  new Error(`lost the scan lock: it could not be extended (${describe(error)})`),
                );
              }
            })
            .finally(() => {
              extending = undefined;
            });
        },
        Math.max(100, Math.floor(ttl / 3)),
      );
      timer.unref();
      return {
        signal: controller.signal,
        async release() {
          clearInterval(timer);
          await extending?.catch(() => {});
          await lock.release().catch(() => {});
        },
      };
    },
  };
}

function describe(error: unknown): string {
  if (error instanceof Error && error.message) return error.message;
  return String(error);
}
