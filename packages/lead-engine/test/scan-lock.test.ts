// The single-flight scan lock on a real Redis: a held lock is an answer (undefined), an unreachable Redis is a
// LeadScanLockUnavailableError, a released lease frees the lock, and a lease whose lock was taken from it
// (it could not be extended) aborts.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { WardenError } from '@warden/domain';
import { createRedis, createRedlock } from '@warden/queue';
import { testServers, waitFor } from '@warden/testing';
import { LeadScanLockUnavailableError, leadScanLockKey, redlockLeadScanLock } from '../src/index.js';

const redis = createRedis(testServers.redisUrl, 'general');
const key = () => `test-lead-lock:${randomUUID()}`;

afterAll(() => {
  redis.disconnect();
});

describe('leadScanLockKey', () => {
  it('should namespace the key by prefix, tenant and window kind', () => {
    expect(leadScanLockKey('warden', 'acme', '24h')).toBe('lock:lead-scan:warden:acme:24h');
  });
});

describe('redlockLeadScanLock', () => {
  it('should answer undefined while someone else holds the lock, and lend it once released', async () => {
    const lock = redlockLeadScanLock(createRedlock([redis]));
    const resource = key();
    const first = await lock.tryAcquire(resource);
    expect(first?.signal.aborted).toBe(false);
    await expect(lock.tryAcquire(resource)).resolves.toBeUndefined();
    await first!.release();
    const second = await lock.tryAcquire(resource);
    expect(second).toBeDefined();
    await second!.release();
  });

  it('should throw a LeadScanLockUnavailableError, a Warden error with its own code, when Redis cannot be asked', async () => {
    // Nothing listens on port 1: every vote fails with a connection error, not with "locked".
    const away = createRedis('redis://127.0.0.1:1', 'general', {
      retryStrategy: () => null,
      connectTimeout: 200,
    });
    try {
      const error = await redlockLeadScanLock(createRedlock([away]))
        .tryAcquire(key())
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LeadScanLockUnavailableError);
      expect(error).toBeInstanceOf(WardenError);
      expect(error).toMatchObject({
        code: 'lead_scan_lock_unavailable',
        name: 'LeadScanLockUnavailableError',
      });
      expect((error as Error).message).toMatch(/^cannot take the scan lock in Redis: /);
    } finally {
      away.disconnect();
    }
  });

  it('should abort the lease once its lock could not be extended and has expired', async () => {
    const resource = key();
    const lease = await redlockLeadScanLock(createRedlock([redis]), { ttlMs: 400 }).tryAcquire(resource);
    expect(lease).toBeDefined();
    // Someone else's lock now stands under the key: the holder's extension is refused and its time runs out.
    await redis.set(resource, 'another-holder', 'PX', 60_000);
    await waitFor('the lease to abort', () => lease!.signal.aborted, { timeoutMs: 5000 });
    expect((lease!.signal.reason as Error).message).toContain('lost the scan lock');
    await lease!.release();
    // Releasing a lost lease leaves the other holder's lock alone.
    await expect(redis.get(resource)).resolves.toBe('another-holder');
    await redis.del(resource);
  });
});
