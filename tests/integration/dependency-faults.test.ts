/**
 * Connection faults as the drivers really report them, through a proxy the test cuts: a pooled Postgres
 * connection that breaks while a transaction holds it must fail that transaction and nothing else (an
 * unhandled 'error' on a checked-out client used to end the process), and every way Postgres or Redis says
 * "not there" must be recognised as a dependency being unavailable — and nothing else must be.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '@warden/db';
import { createRedis } from '@warden/queue';
import {
  DependencyUnavailableError,
  asDependencyUnavailable,
  unavailableDependencyOf,
} from '@warden/runtime';
import { createTestDatabase, sleep, testServers, waitFor, type TestDatabase } from '@warden/testing';
import { tcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

describe('a Postgres connection that breaks', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;

  beforeAll(async () => {
    database = await createTestDatabase();
    const target = new URL(database.url);
    proxy = await tcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  });
  afterAll(async () => {
    await proxy?.close();
    await database?.drop();
  });

  it('should fail the transaction holding it, leave the process up, and let the pool serve once it is back', async () => {
    const seen: Error[] = [];
    const db = createDb({
      url: proxy.urlFor(database.url),
      maxConnections: 2,
      onConnectionError: (e) => seen.push(e),
    });
    try {
      const failure = await failureOf(
        db.transaction().execute(async (trx) => {
          await sql`select 1`.execute(trx);
          // The connection breaks between two queries of the transaction: the client is checked out and idle.
          await proxy.cut();
          await sleep(100);
          await sql`select 1`.execute(trx);
        }),
      );
      expect(unavailableDependencyOf(failure)).toBe('database');
      expect(seen.map((e) => e.message)).toContain('Connection terminated unexpectedly');
      expect(unavailableDependencyOf(await failureOf(sql`select 1`.execute(db)))).toBeDefined();

      await proxy.restore();
      const { rows } = await sql<{ ok: number }>`select 1 as ok`.execute(db);
      expect(rows).toEqual([{ ok: 1 }]);
    } finally {
      await proxy.restore();
      await db.destroy();
    }
  });

  it('should recognise admin_shutdown (57P01) as the database being unavailable, and an error of the query itself as not', async () => {
    const victim = createDb({ url: database.url, maxConnections: 1, applicationName: 'warden-victim' });
    const killer = createDb({ url: database.url, maxConnections: 1 });
    try {
      const sleeping = failureOf(sql`select pg_sleep(10)`.execute(victim));
      await sleep(200);
      await sql`select pg_terminate_backend(pid) from pg_stat_activity
                 where application_name = 'warden-victim' and datname = current_database()`.execute(killer);
      const terminated = await sleeping;
      expect((terminated as { code?: string }).code).toBe('57P01');
      expect(unavailableDependencyOf(terminated)).toBe('database');

      const queryError = await failureOf(sql`select 1/0`.execute(killer));
      expect((queryError as { code?: string }).code).toBe('22012');
      expect(unavailableDependencyOf(queryError)).toBeUndefined();
    } finally {
      await victim.destroy();
      await killer.destroy();
    }
  });

  it('should recognise a refused connection, with the driver message kept out of the error a caller sees', async () => {
    await proxy.cut();
    const db = createDb({ url: proxy.urlFor(database.url), maxConnections: 1 });
    try {
      const refused = await failureOf(sql`select 1`.execute(db));
      const unavailable = asDependencyUnavailable(refused);
      expect(unavailable).toBeInstanceOf(DependencyUnavailableError);
      expect(unavailable?.code).toBe('unavailable');
      expect(unavailable?.httpStatus).toBe(503);
      expect(unavailable?.retryable).toBe(true);
      expect(unavailable?.message).not.toContain('127.0.0.1');
    } finally {
      await db.destroy();
      await proxy.restore();
    }
  });
});

describe('a Redis that is not there', () => {
  let proxy: TcpProxy;

  beforeAll(async () => {
    const target = new URL(testServers.redisUrl);
    proxy = await tcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('should be recognised as the queue being unavailable, for every connection role', async () => {
    const producer = createRedis(proxy.urlFor(testServers.redisUrl), 'producer');
    const general = createRedis(proxy.urlFor(testServers.redisUrl), 'general', {
      retryStrategy: () => 50,
    });
    try {
      // The producer has no offline queue: wait until it is connected before the first command.
      await waitFor('the producer connection', () => producer.status === 'ready');
      expect(await producer.ping()).toBe('PONG');
      expect(await general.ping()).toBe('PONG');
      await proxy.cut();
      await sleep(100);
      expect(unavailableDependencyOf(await failureOf(producer.ping()))).toBe('queue');
      expect(unavailableDependencyOf(await failureOf(general.ping()))).toBe('queue');
      expect(unavailableDependencyOf(new Error('ERR unknown command'))).toBeUndefined();
    } finally {
      producer.disconnect();
      general.disconnect();
    }
  });
});
