import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudits, revokeApiKey, findActiveApiKeyByHash } from '@warden/db';
import { hashApiKey } from '@warden/domain';
import { call, event, startTestApi, type TestApi } from '../support/api.js';

describe('API authentication and tenancy', () => {
  let api: TestApi;
  let acmeReader: string;
  let acmeWriter: string;
  let globexReader: string;

  beforeAll(async () => {
    api = await startTestApi();
    acmeReader = await api.createKey('acme', ['tasks:read']);
    acmeWriter = await api.createKey('acme', ['events:write']);
    globexReader = await api.createKey('globex', ['tasks:read']);
    await api.db
      .insertInto('tasks')
      .values({
        tenant_id: 'acme',
        task_id: 'task-a',
        status: 'paused',
        metadata: JSON.stringify({ owner: 'ops' }),
      })
      .execute();
    await api.db
      .insertInto('task_gates')
      .values({
        tenant_id: 'acme',
        gate_id: 'gate-1',
        task_id: 'task-a',
        checkpoint: 'open_plan',
        reason: 'two risks',
      })
      .execute();
  });
  afterAll(async () => {
    await api.stop();
  });

  it('should answer 401 without an Authorization header', async () => {
    const res = await call(`${api.url}/v1/tasks/task-a`);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthorized');
  });

  it('should answer 401 for an unknown key', async () => {
    const res = await call(`${api.url}/v1/tasks/task-a`, { key: 'wdn_not-a-real-key' });
    expect(res.status).toBe(401);
  });

  it('should answer 401 for a revoked key', async () => {
    const key = await api.createKey('acme', ['tasks:read']);
    expect((await call(`${api.url}/v1/tasks/task-a`, { key })).status).toBe(200);
    const record = await findActiveApiKeyByHash(api.db, hashApiKey(key));
    await revokeApiKey(api.db, record!.keyId);
    expect((await call(`${api.url}/v1/tasks/task-a`, { key })).status).toBe(401);
  });

  it('should answer 403 when the key lacks the scope', async () => {
    const res = await call(`${api.url}/v1/events`, { key: acmeReader, body: event('e1') });
    expect(res.status).toBe(403);
    expect(res.body.error.message).toContain('events:write');
  });

  it('should show a task with its open gates to its own tenant', async () => {
    const res = await call(`${api.url}/v1/tasks/task-a`, { key: acmeReader });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ task_id: 'task-a', status: 'paused', metadata: { owner: 'ops' } });
    expect(res.body.open_gates).toEqual([
      expect.objectContaining({ gate_id: 'gate-1', checkpoint: 'open_plan', state: 'open' }),
    ]);
  });

  it("should answer 404 for another tenant's task, exactly as for a missing one", async () => {
    const foreign = await call(`${api.url}/v1/tasks/task-a`, { key: globexReader });
    const missing = await call(`${api.url}/v1/tasks/no-such-task`, { key: globexReader });
    expect(foreign.status).toBe(404);
    expect(missing.status).toBe(404);
    expect((await call(`${api.url}/v1/tasks/task-a/audits`, { key: globexReader })).status).toBe(404);
  });

  it('should page through audits with a cursor, oldest first', async () => {
    // Audit rows only enter through appendAudits, which chains them.
    for (let i = 0; i < 5; i++) {
      await api.db.transaction().execute((trx) =>
        appendAudits(trx, [
          {
            tenant_id: 'acme',
            task_id: 'task-a',
            event_type: 'SUPERVISOR_ALLOWED',
            level: 'info',
            decision_id: null,
            event_id: null,
            source_event_ts: null,
            payload: { i },
          },
        ]),
      );
    }
    const first = await call(`${api.url}/v1/tasks/task-a/audits?limit=2`, { key: acmeReader });
    expect(first.status).toBe(200);
    expect(first.body.items.map((a: { payload: { i: number } }) => a.payload.i)).toEqual([0, 1]);
    const second = await call(`${api.url}/v1/tasks/task-a/audits?limit=2&cursor=${first.body.next_cursor}`, {
      key: acmeReader,
    });
    expect(second.body.items.map((a: { payload: { i: number } }) => a.payload.i)).toEqual([2, 3]);
    const third = await call(`${api.url}/v1/tasks/task-a/audits?limit=2&cursor=${second.body.next_cursor}`, {
      key: acmeReader,
    });
    expect(third.body.items).toHaveLength(1);
    expect(third.body.next_cursor).toBeNull();
  });

  it('should answer 400 for a limit out of range or a forged cursor', async () => {
    expect(
      (await call(`${api.url}/v1/tasks/task-a/audits?limit=1000`, { key: acmeReader })).body.error.details[0]
        .path,
    ).toBe('limit');
    expect((await call(`${api.url}/v1/tasks/task-a/audits?cursor=garbage`, { key: acmeReader })).status).toBe(
      400,
    );
  });

  it('should accept a writer key for events and refuse it for task reads', async () => {
    expect((await call(`${api.url}/v1/events`, { key: acmeWriter, body: event('w1') })).status).toBe(202);
    expect((await call(`${api.url}/v1/tasks/task-a`, { key: acmeWriter })).status).toBe(403);
  });

  describe('Bull Board', () => {
    const basic = (key: string) => ({
      authorization: `Basic ${Buffer.from(`anyone:${key}`).toString('base64')}`,
    });

    it('should challenge a browser with Basic auth when no credentials are sent', async () => {
      const res = await call(`${api.url}/admin/queues`);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic /);
    });

    it("should refuse a tenant's key, its admin key included, saying an operator's key is needed", async () => {
      expect((await call(`${api.url}/admin/queues`, { headers: basic(acmeReader) })).status).toBe(403);
      const admin = await api.createKey('acme', ['admin']);
      for (const path of ['/admin/queues', '/admin/queues/api/queues']) {
        const res = await call(`${api.url}${path}`, { headers: basic(admin) });
        expect(res.status).toBe(403);
        expect(res.body.error.message).toMatch(/platform operator's key.*platform:operate/);
      }
    });

    it("should serve the board and list the supervisor-events queue to a platform operator's key", async () => {
      const operator = await api.createOperatorKey();
      const page = await call(`${api.url}/admin/queues`, { headers: basic(operator) });
      expect(page.status).toBe(200);
      const queues = await call(`${api.url}/admin/queues/api/queues`, { headers: basic(operator) });
      expect(queues.status).toBe(200);
      expect(queues.body.queues.map((q: { name: string }) => q.name)).toContain('supervisor-events');
    });
  });

  it('should serve an OpenAPI 3.1 document describing the event route', async () => {
    const res = await call(`${api.url}/openapi.json`);
    expect(res.body.openapi).toBe('3.1.0');
    expect(res.body.paths['/v1/events'].post.responses['202']).toBeDefined();
    expect(res.body.components.schemas.IncomingEvent.required).toEqual(
      expect.arrayContaining(['event_id', 'task_id', 'event_type']),
    );
  });

  it('should answer unknown routes with a JSON 404', async () => {
    const res = await call(`${api.url}/v1/nope`, { key: acmeReader });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
  });

  it('should expose Prometheus metrics including ingest counters', async () => {
    const res = await call(`${api.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.body).toContain('events_ingested_total');
    expect(res.body).toContain('http_request_duration_seconds');
  });
});
