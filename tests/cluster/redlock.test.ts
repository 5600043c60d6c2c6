/**
 * Redlock over several independent Redis servers (REDLOCK_URLS, docs/deploy.md "Locks"): a lock is written on
 * every server that answers, holds while a majority answers, and is refused — never granted — without one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commonEnvShape } from '@warden/domain';
import {
  createRedis,
  createRedlock,
  isLockHeldError,
  openLockClients,
  type LockClients,
} from '@warden/queue';
import { ownRedisServer, type OwnRedis } from '../support/supervisor.js';

describe('Redlock over three independent Redis servers', () => {
  let servers: OwnRedis[] = [];
  let locks: LockClients;

  beforeAll(async () => {
    servers = await Promise.all([ownRedisServer(), ownRedisServer(), ownRedisServer()]);
    await Promise.all(servers.map((server) => server.start()));
    const urls = commonEnvShape.REDLOCK_URLS.parse(servers.map((server) => server.url).join(','));
    locks = openLockClients(urls, () => {
      throw new Error('the main Redis must not be used when REDLOCK_URLS names servers');
    });
  });
  afterAll(async () => {
    locks?.close();
    await Promise.all(servers.map((server) => server.stop()));
  });

  const valueOn = async (server: OwnRedis, key: string) => {
    const client = createRedis(server.url, 'general');
    try {
      return await client.get(key);
    } finally {
      client.disconnect();
    }
  };

  it('should open one client per server', () => {
    expect(locks.clients).toHaveLength(3);
  });

  it('should write the lock on every server', async () => {
    const lock = await createRedlock(locks.clients).acquire(['redlock-test:all'], 10_000);
    try {
      for (const server of servers) expect(await valueOn(server, 'redlock-test:all')).toBe(lock.value);
    } finally {
      await lock.release();
    }
  });

  it('should refuse a lock held on a majority, as held', async () => {
    const redlock = createRedlock(locks.clients);
    const lock = await redlock.acquire(['redlock-test:held'], 10_000);
    try {
      const error = await redlock.acquire(['redlock-test:held'], 10_000).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect(await isLockHeldError(error)).toBe(true);
    } finally {
      await lock.release();
    }
  });

  it('should still lock with one server of three down', async () => {
    await servers[0]!.stop();
    const lock = await createRedlock(locks.clients).acquire(['redlock-test:minority-down'], 10_000);
    expect(lock.value).toEqual(expect.any(String));
    await lock.release().catch(() => {});
  });

  it('should refuse the lock with two servers of three down, and not as held', async () => {
    await servers[1]!.stop();
    const error = await createRedlock(locks.clients)
      .acquire(['redlock-test:majority-down'], 10_000)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    // Unreachable, not held: a caller must neither run the guarded work nor leave it to a holder that is not there.
    expect(await isLockHeldError(error)).toBe(false);
  });
});

describe('the lock settings', () => {
  it('should default to no lock servers: locks on the main Redis', () => {
    expect(commonEnvShape.REDLOCK_URLS.parse(undefined)).toEqual([]);
    const main = createRedis('redis://127.0.0.1:1', 'general', { lazyConnect: true });
    try {
      expect(openLockClients([], () => main).clients).toEqual([main]);
    } finally {
      main.disconnect();
    }
  });

  it.each([
    ['redis+cluster://127.0.0.1:7000,127.0.0.1:7001', 'not a cluster'],
    ['http://127.0.0.1:6379', 'must start with redis://'],
    ['redis://127.0.0.1:6379,redis://127.0.0.1:6379', 'the same Redis twice'],
  ])('should refuse %s', (value, message) => {
    const parsed = commonEnvShape.REDLOCK_URLS.safeParse(value);
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues[0]!.message).toContain(message);
  });
});
