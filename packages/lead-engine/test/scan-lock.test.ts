// The single-flight lock over a Redlock-shaped fake: a held lock is an answer (undefined), an unreachable
// Redis is a LeadScanLockUnavailableError, and a lock that cannot be extended past its expiry aborts the lease.
import { describe, expect, it } from 'vitest';
import { WardenError } from '@warden/domain';
import {
  LeadScanLockUnavailableError,
  leadScanLockKey,
  redlockLeadScanLock,
  type RedlockLike,
  type RedlockLockLike,
} from '../src/index.js';

/** The error Redlock throws when the quorum failed, with the votes against of each attempt. */
function quorumError(voteName: string): Error {
  const votesAgainst = new Map([['redis', Object.assign(new Error('vote'), { name: voteName })]]);
  return Object.assign(new Error('The operation was unable to achieve a quorum during its retry window.'), {
    attempts: [Promise.resolve({ votesAgainst })],
  });
}

function lockThat(extend: () => Promise<RedlockLockLike>, expiration = Date.now() + 60_000) {
  const state = { released: false };
  const lock: RedlockLockLike = {
    expiration,
    extend,
    release: async () => {
      state.released = true;
    },
  };
  return { lock, state };
}

describe('leadScanLockKey', () => {
  it('should namespace the key by prefix, tenant and window kind', () => {
    expect(leadScanLockKey('warden', 'acme', '24h')).toBe('lock:lead-scan:warden:acme:24h');
  });
});

describe('redlockLeadScanLock', () => {
  it('should answer undefined when someone else holds the lock', async () => {
    const redlock: RedlockLike = { acquire: () => Promise.reject(quorumError('ResourceLockedError')) };
    await expect(redlockLeadScanLock(redlock).tryAcquire('k')).resolves.toBeUndefined();
  });

  it('should throw a LeadScanLockUnavailableError, a Warden error with its own code, when Redis cannot be asked', async () => {
    const redlock: RedlockLike = { acquire: () => Promise.reject(new Error('connect ECONNREFUSED')) };
    const error = await redlockLeadScanLock(redlock)
      .tryAcquire('k')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeadScanLockUnavailableError);
    expect(error).toBeInstanceOf(WardenError);
    expect(error).toMatchObject({
      code: 'lead_scan_lock_unavailable',
      name: 'LeadScanLockUnavailableError',
      message: 'cannot take the scan lock in Redis: connect ECONNREFUSED',
    });
  });

  it('should hand out a lease that releases the lock', async () => {
    const { lock, state } = lockThat(() => Promise.resolve(lock));
    const lease = await redlockLeadScanLock({ acquire: () => Promise.resolve(lock) }).tryAcquire('k');
    expect(lease?.signal.aborted).toBe(false);
    await lease!.release();
    expect(state.released).toBe(true);
  });

  it('should abort the lease once the lock could not be extended and has expired', async () => {
    const { lock } = lockThat(() => Promise.reject(new Error('redis away')), Date.now() - 1);
    const lease = await redlockLeadScanLock(
      { acquire: () => Promise.resolve(lock) },
      { ttlMs: 300 },
    ).tryAcquire('k');
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(lease!.signal.aborted).toBe(true);
    expect((lease!.signal.reason as Error).message).toContain('lost the scan lock');
    await lease!.release();
  });
});
