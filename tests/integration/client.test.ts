/**
 * The SDK against a real API (in-process, real Postgres and Redis). Only the cases the API cannot produce
 * on demand — 503s and a server that never answers — use a tiny local HTTP server instead.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiService, loadConfig, type ApiService } from '@warden/api';
import {
  WardenApiError,
  WardenClient,
  WardenConnectionError,
  deriveEventId,
  type EventToSend,
} from '@warden/client';
import { appendAudits, ensureTenant, insertApiKey } from '@warden/db';
import { displayPrefix, generateApiKey, hashApiKey } from '@warden/domain';
import {
  createTestDatabase,
  deleteQueuePrefix,
  testQueuePrefix,
  testServers,
  type TestDatabase,
} from '@warden/testing';

const TENANT = 'client-test';

/** A fetch that counts its calls and can be told to lose the response of the first N real requests. */
function instrumentedFetch(options: { loseFirstResponses?: number } = {}) {
  const state = { calls: 0, bodies: [] as string[] };
  let toLose = options.loseFirstResponses ?? 0;
  const fetchWithCount: typeof globalThis.fetch = async (input, init) => {
    state.calls += 1;
    if (typeof init?.body === 'string') state.bodies.push(init.body);
    const response = await globalThis.fetch(input, init);
    if (toLose > 0) {
      toLose -= 1;
      // The server has done its work; the caller never hears of it — as when a connection drops mid-reply.
      await response.arrayBuffer();
      throw new TypeError('fetch failed (simulated lost response)');
    }
    return response;
  };
  return { fetch: fetchWithCount, state };
}

/** A local HTTP server whose every request is answered by `respond`; records request bodies. */
async function startFakeApi(
  respond: (requestNumber: number, req: IncomingMessage, res: ServerResponse) => void,
) {
  const bodies: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      respond(bodies.length, req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    bodies,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function answerJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

describe('WardenClient', () => {
  let database: TestDatabase;
  let prefix: string;
  let api: ApiService;
  let apiKey: string;
  let baseUrl: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    prefix = testQueuePrefix();
    await ensureTenant(database.db, TENANT);
    apiKey = generateApiKey();
    await insertApiKey(database.db, {
      tenantId: TENANT,
      name: 'client test',
      owner: 'client-test-agent',
      keyHash: hashApiKey(apiKey),
      keyPrefix: displayPrefix(apiKey),
      scopes: ['events:write', 'tasks:read'],
    });
    api = createApiService(
      loadConfig({
        DATABASE_URL: database.url,
        REDIS_URL: testServers.redisUrl,
        QUEUE_PREFIX: prefix,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
      }),
    );
    await api.start();
    baseUrl = `http://127.0.0.1:${api.port()}`;
  });

  afterAll(async () => {
    await api?.stop();
    await database?.drop();
    if (prefix) await deleteQueuePrefix(prefix);
  });

  /** Events for a task of their own, so each test counts only its own inbox rows. */
  function eventsFor(taskId: string, count: number): EventToSend[] {
    return Array.from({ length: count }, (_, i) => ({
      event_id: `${taskId}-e${i}`,
      task_id: taskId,
      event_type: 'TASK_STEP_COMPLETED',
      payload: { step: i },
    }));
  }

  async function inboxRows(taskId: string) {
    return database.db
      .selectFrom('supervisor_inbox')
      .selectAll()
      .where('tenant_id', '=', TENANT)
      .where('task_id', '=', taskId)
      .execute();
  }

  describe('when sending one event', () => {
    it('should resolve with the 202 counts once the event is in supervisor_inbox', async () => {
      const client = new WardenClient({ baseUrl, apiKey });
      const taskId = `task-${randomUUID()}`;

      const result = await client.sendEvent({
        event_id: 'one',
        task_id: taskId,
        event_type: 'TASK_CREATED',
        payload: { agent_spec: { name: 'etl' } },
      });

      expect(result).toEqual({ accepted: 1, duplicates: 0, event_id: 'one' });
      const rows = await inboxRows(taskId);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        event_id: 'one',
        event_type: 'TASK_CREATED',
        source: 'http',
        status: 'pending',
        payload: { agent_spec: { name: 'etl' } },
      });
    });
  });

  describe('when sending more events than one request may carry', () => {
    const taskId = `task-${randomUUID()}`;
    const events = eventsFor(taskId, 1200);

    it('should split them into batches of 500 and sum the counts', async () => {
      const { fetch, state } = instrumentedFetch();
      const client = new WardenClient({ baseUrl, apiKey, fetch });

      const result = await client.sendEvents(events);

      expect(result).toMatchObject({ accepted: 1200, duplicates: 0 });
      expect(result.event_ids).toEqual(events.map((event) => event.event_id));
      expect(state.calls).toBe(3);
      expect(state.bodies.map((body) => (JSON.parse(body) as { events: unknown[] }).events.length)).toEqual([
        500, 500, 200,
      ]);
      expect(await inboxRows(taskId)).toHaveLength(1200);
    });

    it('should count every event as a duplicate when the same events are sent again', async () => {
      const client = new WardenClient({ baseUrl, apiKey });

      const result = await client.sendEvents(events);

      expect(result).toMatchObject({ accepted: 0, duplicates: 1200 });
      expect(await inboxRows(taskId)).toHaveLength(1200);
    });
  });

  describe('when an event without event_id loses its response and is retried', () => {
    it('should re-send the same id, so the server answers duplicates: 1 and stores one row', async () => {
      const { fetch, state } = instrumentedFetch({ loseFirstResponses: 1 });
      const client = new WardenClient({ baseUrl, apiKey, fetch, retryDelayMs: 10 });
      const taskId = `task-${randomUUID()}`;

      const result = await client.sendEvent({ task_id: taskId, event_type: 'TASK_CREATED' });

      expect(state.calls).toBe(2);
      expect(result).toMatchObject({ accepted: 0, duplicates: 1 });
      const sentIds = state.bodies.map((body) => (JSON.parse(body) as { event_id: string }).event_id);
      expect(sentIds[0]).toBe(result.event_id);
      expect(sentIds[1]).toBe(result.event_id);
      const rows = await inboxRows(taskId);
      expect(rows.map((row) => row.event_id)).toEqual([result.event_id]);
    });

    it('should derive the same id from the same content when ts is given, so a later re-send is a duplicate too', async () => {
      const client = new WardenClient({ baseUrl, apiKey });
      const taskId = `task-${randomUUID()}`;
      const event = {
        task_id: taskId,
        event_type: 'TASK_FAILED',
        ts: '2026-11-22T10:00:00.000Z',
        payload: { error: 'timeout', retry_count: 1 },
      };

      const first = await client.sendEvent(event);
      const again = await client.sendEvent({ ...event, payload: { retry_count: 1, error: 'timeout' } });

      expect(first).toMatchObject({ accepted: 1, duplicates: 0 });
      expect(again).toMatchObject({ accepted: 0, duplicates: 1, event_id: first.event_id });
      expect(first.event_id).toBe(deriveEventId(event));
      expect(await inboxRows(taskId)).toHaveLength(1);
    });

    it('should give distinct random ids to events without ts, so identical events are not merged', async () => {
      const client = new WardenClient({ baseUrl, apiKey });
      const taskId = `task-${randomUUID()}`;
      const heartbeat = { task_id: taskId, event_type: 'TASK_STATE_CHANGED', payload: { state: 'alive' } };

      const result = await client.sendEvents([heartbeat, heartbeat, heartbeat]);

      expect(result).toMatchObject({ accepted: 3, duplicates: 0 });
      expect(new Set(result.event_ids).size).toBe(3);
    });
  });

  describe('when the server rejects the request with a 4xx', () => {
    it('should throw WardenApiError with the failing path and not retry', async () => {
      const { fetch, state } = instrumentedFetch();
      const client = new WardenClient({ baseUrl, apiKey, fetch });

      const error = await client
        .sendEvent({ task_id: 'bad-type', event_type: 'not upper case' })
        .catch((e: unknown) => e);

      expect(error).toBeInstanceOf(WardenApiError);
      expect(error).toMatchObject({ status: 400, code: 'validation_error' });
      expect((error as WardenApiError).details.map((detail) => detail.path)).toEqual(['event_type']);
      expect(state.calls).toBe(1);
    });

    it('should number a failing path within the whole list, not within its batch', async () => {
      const { fetch, state } = instrumentedFetch();
      const client = new WardenClient({ baseUrl, apiKey, fetch });
      const taskId = `task-${randomUUID()}`;
      const events = eventsFor(taskId, 600);
      events[550] = { ...events[550]!, event_type: 'lower' };

      const error = await client.sendEvents(events).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(WardenApiError);
      expect((error as WardenApiError).details.map((detail) => detail.path)).toEqual([
        'events.550.event_type',
      ]);
      expect((error as WardenApiError).message).toContain('events.550.event_type');
      expect(state.calls).toBe(2);
      // The first batch was stored before the second failed; re-sending the list later is safe.
      expect(await inboxRows(taskId)).toHaveLength(500);
    });

    it('should throw 401 unauthorized for an unknown key, once', async () => {
      const { fetch, state } = instrumentedFetch();
      const client = new WardenClient({ baseUrl, apiKey: generateApiKey(), fetch });

      await expect(client.sendEvent({ task_id: 't', event_type: 'TASK_CREATED' })).rejects.toMatchObject({
        status: 401,
        code: 'unauthorized',
      });
      expect(state.calls).toBe(1);
    });
  });

  describe('when the server answers 503', () => {
    it('should retry with the same body until it gets 202', async () => {
      const fake = await startFakeApi((n, _req, res) => {
        if (n <= 2)
          answerJson(res, 503, { error: { code: 'unavailable', message: 'try later', details: [] } });
        else answerJson(res, 202, { accepted: 1, duplicates: 0 });
      });
      try {
        const client = new WardenClient({ baseUrl: fake.baseUrl, apiKey, retryDelayMs: 10 });

        const result = await client.sendEvent({ task_id: 'task-503', event_type: 'TASK_CREATED' });

        expect(result).toMatchObject({ accepted: 1, duplicates: 0 });
        expect(fake.bodies).toHaveLength(3);
        expect(new Set(fake.bodies).size).toBe(1);
      } finally {
        await fake.close();
      }
    });

    it('should throw the 503 as WardenApiError once the retries are used up', async () => {
      const fake = await startFakeApi((_n, _req, res) =>
        answerJson(res, 503, { error: { code: 'unavailable', message: 'down', details: [] } }),
      );
      try {
        const client = new WardenClient({ baseUrl: fake.baseUrl, apiKey, retries: 2, retryDelayMs: 10 });

        await expect(
          client.sendEvent({ task_id: 'task-503', event_type: 'TASK_CREATED' }),
        ).rejects.toMatchObject({
          name: 'WardenApiError',
          status: 503,
          code: 'unavailable',
        });
        expect(fake.bodies).toHaveLength(3);
      } finally {
        await fake.close();
      }
    });
  });

  describe('when the server never answers', () => {
    it('should time out each attempt and throw WardenConnectionError after the retries', async () => {
      const fake = await startFakeApi(() => {
        // Never answers.
      });
      try {
        const client = new WardenClient({
          baseUrl: fake.baseUrl,
          apiKey,
          timeoutMs: 150,
          retries: 1,
          retryDelayMs: 10,
        });

        const error = await client
          .sendEvent({ task_id: 'task-slow', event_type: 'TASK_CREATED' })
          .catch((e: unknown) => e);

        expect(error).toBeInstanceOf(WardenConnectionError);
        expect(error).toMatchObject({ timedOut: true, attempts: 2 });
        expect(fake.bodies).toHaveLength(2);
      } finally {
        await fake.close();
      }
    });
  });

  describe('when reading a task', () => {
    const taskId = `task-${randomUUID()}`;

    beforeAll(async () => {
      await database.db
        .insertInto('tasks')
        .values({
          tenant_id: TENANT,
          task_id: taskId,
          status: 'verifying',
          metadata: JSON.stringify({ owner: 'etl' }),
        })
        .execute();
      // Audit rows only enter through appendAudits, which chains them.
      await database.db.transaction().execute((trx) =>
        appendAudits(
          trx,
          ['SUPERVISOR_ALLOWED', 'SUPERVISOR_PAUSED', 'GATE_RELEASED'].map((eventType) => ({
            tenant_id: TENANT,
            task_id: taskId,
            event_type: eventType,
            level: 'info' as const,
            decision_id: null,
            event_id: null,
            source_event_ts: null,
            payload: { reason: eventType },
          })),
        ),
      );
    });

    it('should return the task with its status and metadata', async () => {
      const client = new WardenClient({ baseUrl, apiKey });

      const task = await client.getTask(taskId);

      expect(task).toMatchObject({
        task_id: taskId,
        status: 'verifying',
        metadata: { owner: 'etl' },
        open_gates: [],
      });
    });

    it('should page through the audits with limit and cursor', async () => {
      const client = new WardenClient({ baseUrl, apiKey });

      const first = await client.listTaskAudits(taskId, { limit: 2 });
      expect(first.items.map((audit) => audit.event_type)).toEqual([
        'SUPERVISOR_ALLOWED',
        'SUPERVISOR_PAUSED',
      ]);
      expect(first.next_cursor).toEqual(expect.any(String));

      const second = await client.listTaskAudits(taskId, { limit: 2, cursor: first.next_cursor! });
      expect(second.items.map((audit) => audit.event_type)).toEqual(['GATE_RELEASED']);
      expect(second.next_cursor).toBeNull();
    });

    it('should throw a 404 WardenApiError for an unknown task, without retrying', async () => {
      const { fetch, state } = instrumentedFetch();
      const client = new WardenClient({ baseUrl, apiKey, fetch });

      await expect(client.getTask('no-such-task')).rejects.toMatchObject({ status: 404, code: 'not_found' });
      await expect(client.listTaskAudits('no-such-task')).rejects.toMatchObject({
        status: 404,
        code: 'not_found',
      });
      expect(state.calls).toBe(2);
    });
  });
});
