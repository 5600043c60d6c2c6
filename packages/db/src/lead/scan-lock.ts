/**
 * The single-flight lock of lead scans: one scan per tenant and window kind at a time (SPEC §4), held in
 * Redis through Redlock and extended while the scan runs. Written against the shape of a Redlock (the
 * `@sesamecare-oss/redlock` one `@warden/queue` creates) rather than the package, so this package needs no
 * Redis dependency and tests can hand in anything with the same shape.
 */

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

/** Error thrown when Redis could not be asked for the lock (unreachable, timed out). */
export class LeadScanLockUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LeadScanLockUnavailableError';
  }
}

/**
 * A {@link LeadScanLock} over a Redlock. Redlock reports a held lock and an unreachable Redis the same way (a
 * failed quorum); the votes against tell them apart: `ResourceLockedError` means someone holds it.
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
        if (await heldBySomeoneElse(error)) return undefined;
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

async function heldBySomeoneElse(error: unknown): Promise<boolean> {
  const attempts = (error as { attempts?: unknown }).attempts;
  if (!Array.isArray(attempts) || attempts.length === 0) return false;
  const stats = await Promise.allSettled(attempts as Array<Promise<{ votesAgainst?: Map<unknown, Error> }>>);
  return stats.some(
    (result) =>
      result.status === 'fulfilled' &&
      [...(result.value.votesAgainst?.values() ?? [])].some((vote) => vote?.name === 'ResourceLockedError'),
  );
}

function describe(error: unknown): string {
  if (error instanceof Error && error.message) return error.message;
  return String(error);
}
