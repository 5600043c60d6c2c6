/**
 * The API while Postgres is away: its connections to Postgres run through a proxy the test cuts (every open
 * connection dropped, new ones refused — what a Postgres restart looks like from the API). Requests then get
 * 503 `unavailable` with `Retry-After`, never a 500, and the API serves again by itself once Postgres is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiService, loadConfig, type ApiService } from '@warden/api';
import { ensureTenant, insertApiKey } from '@warden/db';
import { displayPrefix, generateApiKey, hashApiKey } from '@warden/domain';
import {
  createTestDatabase,
  deleteQueuePrefix,
  testQueuePrefix,
  testServers,
  type TestDatabase,
} from '@warden/testing';
import { call, event } from '../support/api.js';
import { tcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

describe('the API while Postgres is unreachable', () => {
  let database: TestDatabase;
  let proxy: TcpProxy;
  let service: ApiService;
  let url: string;
  let key: string;
  const prefix = testQueuePrefix();

  beforeAll(async () => {
    database = await createTestDatabase();
    const target = new URL(database.url);
    proxy = await tcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    service = createApiService(
      loadConfig({
        DATABASE_URL: proxy.urlFor(database.url),
        REDIS_URL: testServers.redisUrl,
        QUEUE_PREFIX: prefix,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'silent',
        // Every request looks its key up in Postgres, so every request meets the outage.
        AUTH_CACHE_TTL_MS: '0',
      }),
    );
    await service.start();
    url = `http://127.0.0.1:${service.port()}`;
    await ensureTenant(database.db, 'acme');
    key = generateApiKey();
    await insertApiKey(database.db, {
      tenantId: 'acme',
      name: 'test',
      owner: 'api-unavailable test',
      keyHash: hashApiKey(key),
      keyPrefix: displayPrefix(key),
      scopes: ['events:write', 'tasks:read'],
    });
  });
  afterAll(async () => {
    await service?.stop();
    await proxy?.close();
    await database?.drop();
    await deleteQueuePrefix(prefix);
  });

  it('should answer 503 unavailable with Retry-After, not 500, and serve again once Postgres is back', async () => {
    // Warm the pool: the cut then breaks connections the pool holds, as well as refusing new ones.
    expect((await call(`${url}/v1/events`, { key, body: event('before-cut') })).status).toBe(202);

    await proxy.cut();
    for (const request of [
      () => call(`${url}/v1/events`, { key, body: event('during-cut') }),
      () => call(`${url}/v1/tasks/task-1`, { key }),
    ]) {
      const res = await request();
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(res.body.error.code).toBe('unavailable');
      // The driver's message names hosts and ports; the caller is told only what is away.
      expect(res.body.error.message).not.toMatch(/127\.0\.0\.1|ECONNREFUSED/);
    }
    // Readiness agrees.
    expect((await call(`${url}/readyz`)).status).toBe(503);

    await proxy.restore();
    const after = await call(`${url}/v1/events`, { key, body: event('after-cut') });
    expect(after.status).toBe(202);
    const rows = await database.db
      .selectFrom('supervisor_inbox')
      .select('event_id')
      .where('tenant_id', '=', 'acme')
      .orderBy('event_id')
      .execute();
    expect(rows.map((r) => r.event_id)).toEqual(['after-cut', 'before-cut']);
  });
});
