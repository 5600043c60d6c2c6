import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAMES, eventBatchJobId, eventJobId } from '@warden/queue';
import { sleep, waitFor } from '@warden/testing';
import { call, event, startTestApi, type TestApi } from '../support/api.js';

describe('POST /v1/events', () => {
  let api: TestApi;
  let key: string;

  beforeAll(async () => {
    api = await startTestApi();
    key = await api.createKey('acme', ['events:write', 'tasks:read']);
  });
  afterAll(async () => {
    await api.stop();
  });

  const inboxRows = (eventId: string) =>
    api.db
      .selectFrom('supervisor_inbox')
      .selectAll()
      .where('tenant_id', '=', 'acme')
      .where('event_id', '=', eventId)
      .execute();

  it('should store the event as pending in the inbox and enqueue it under the derived job id', async () => {
    const res = await call(`${api.url}/v1/events`, { key, body: event('evt-single', { trace_id: 'tr-1' }) });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 1, duplicates: 0 });
    const rows = await inboxRows('evt-single');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      status: 'pending',
      source: 'http',
      task_id: 'task-1',
      event_type: 'TASK_CREATED',
      trace_id: 'tr-1',
      payload: { step: 1 },
    });
    const job = await api.service
      .queues()!
      .get(QUEUE_NAMES.supervisorEvents)
      .getJob(eventJobId('acme', 'evt-single'));
    expect(job?.data).toMatchObject({ event_id: 'evt-single', tenant_id: 'acme', source: 'http' });
  });

  describe('when single-event requests arrive at once (group commit)', () => {
    /**
     * Sends the requests while inserts wait behind a lock, so they are all there together whatever the machine's
     * speed; what is asserted is what the API then does with them.
     */
    const sendTogether = async (requests: Array<{ key: string; body: unknown }>) => {
      let sent: Promise<Awaited<ReturnType<typeof call>>[]> | undefined;
      await api.db.transaction().execute(async (trx) => {
        await sql`lock table supervisor_inbox in share mode`.execute(trx);
        sent = Promise.all(requests.map((request) => call(`${api.url}/v1/events`, request)));
        // Inserts blocked: the requests still arriving queue up behind them. Then time for the rest to arrive
        // (a loaded machine is slow to send 40 requests).
        await waitFor('inserts blocked behind the lock', async () => {
          const waiting = await sql<{ n: number }>`
            select count(*)::int as n from pg_stat_activity
             where wait_event_type = 'Lock' and query like '%supervisor_inbox%'`.execute(api.db);
          return (waiting.rows[0]?.n ?? 0) >= 1;
        });
        await sleep(1000);
      });
      return sent!;
    };

    /** The waiting supervisor jobs holding events whose id starts with `prefix`, as `tenant/event id` lists. */
    const queuedJobs = async (prefix: string) => {
      const jobs = await api.service.queues()!.get(QUEUE_NAMES.supervisorEvents).getJobs(['waiting']);
      return jobs
        .map((job) =>
          (job.name === 'event' ? [job.data] : job.data.events).map(
            (e: { tenant_id: string; event_id: string }) => `${e.tenant_id}/${e.event_id}`,
          ),
        )
        .filter((events: string[]) => events.some((e) => e.split('/')[1]!.startsWith(prefix)));
    };

    it('should store them in shared statements, each request answered for its own event', async () => {
      const ids = Array.from({ length: 40 }, (_, i) => `group-${i}`);
      const answers = await sendTogether(
        ids.map((id) => ({ key, body: event(id, { task_id: `group-task-${id}` }) })),
      );
      for (const answer of answers)
        expect(answer).toMatchObject({ status: 202, body: { accepted: 1, duplicates: 0 } });
      // Rows written by one statement share its transaction id (xmin): fewer transactions than requests means
      // requests were grouped. Each event is stored once, with its own task.
      const rows = await sql<{ event_id: string; task_id: string; xmin: string }>`
        select event_id, task_id, xmin::text as xmin from supervisor_inbox
         where tenant_id = 'acme' and event_id like 'group-%'`.execute(api.db);
      expect(rows.rows.map((r) => r.event_id).sort()).toEqual([...ids].sort());
      for (const row of rows.rows) expect(row.task_id).toBe(`group-task-${row.event_id}`);
      expect(new Set(rows.rows.map((r) => r.xmin)).size).toBeLessThan(ids.length / 2);

      // A group's events are enqueued together, one job per group instead of one per request: every event
      // is in exactly one job, none left out, none twice.
      const jobs = await queuedJobs('group-');
      expect(jobs.flat().sort()).toEqual(ids.map((id) => `acme/${id}`).sort());
      expect(jobs.length).toBeLessThan(ids.length / 2);
    });

    it("should enqueue a group holding several tenants' events as one job per tenant", async () => {
      const other = await api.createKey('initech', ['events:write']);
      const ids = Array.from({ length: 10 }, (_, i) => `tenants-${i}`);
      const answers = await sendTogether(
        ids.flatMap((id) => [
          { key, body: event(id) },
          { key: other, body: event(id) },
        ]),
      );
      for (const answer of answers)
        expect(answer).toMatchObject({ status: 202, body: { accepted: 1, duplicates: 0 } });
      const jobs = await queuedJobs('tenants-');
      for (const job of jobs) expect(new Set(job.map((e: string) => e.split('/')[0])).size).toBe(1);
      expect(jobs.flat().sort()).toEqual(ids.flatMap((id) => [`acme/${id}`, `initech/${id}`]).sort());
      // How the requests fell into groups depends on when each arrived (up to four groups run at once), so the
      // job count is checked against the groups actually formed: rows one INSERT wrote share its transaction id
      // (xmin), and each group is one job per tenant in it — never one per request.
      const rows = await sql<{ tenant_id: string; xmin: string }>`
        select tenant_id, xmin::text as xmin from supervisor_inbox where event_id like 'tenants-%'`.execute(
        api.db,
      );
      const tenantsByGroup = new Map<string, Set<string>>();
      for (const row of rows.rows)
        tenantsByGroup.set(row.xmin, (tenantsByGroup.get(row.xmin) ?? new Set()).add(row.tenant_id));
      const groups = [...tenantsByGroup.values()];
      expect(groups.some((tenants) => tenants.size === 2)).toBe(true);
      expect(jobs.length).toBe(groups.reduce((sum, tenants) => sum + tenants.size, 0));
      expect(jobs.length).toBeLessThan(ids.length * 2);
    });

    it('should count an event sent by several requests at once as accepted by exactly one', async () => {
      const ids = Array.from({ length: 10 }, (_, i) => `contested-${i}`);
      const answers = await Promise.all(
        [...ids, ...ids, ...ids, ...ids].map((id) => call(`${api.url}/v1/events`, { key, body: event(id) })),
      );
      const accepted = answers.reduce((sum, a) => sum + (a.body.accepted as number), 0);
      const duplicates = answers.reduce((sum, a) => sum + (a.body.duplicates as number), 0);
      expect({ accepted, duplicates }).toEqual({ accepted: 10, duplicates: 30 });
      for (const id of ids) expect(await inboxRows(id)).toHaveLength(1);
    });
  });

  it('should enqueue the new events of a batch as one job, leaving duplicates out', async () => {
    await call(`${api.url}/v1/events`, { key, body: event('batch-old') });
    const res = await call(`${api.url}/v1/events`, {
      key,
      body: { events: [event('batch-a'), event('batch-old'), event('batch-b')] },
    });
    expect(res.body).toEqual({ accepted: 2, duplicates: 1 });
    const job = await api.service
      .queues()!
      .get(QUEUE_NAMES.supervisorEvents)
      .getJob(eventBatchJobId('acme', ['batch-b', 'batch-a']));
    expect(job?.name).toBe('events');
    expect(job?.data.events.map((e: { event_id: string }) => e.event_id)).toEqual(['batch-a', 'batch-b']);
  });

  it('should count the same event id twice in one batch as one accepted and one duplicate', async () => {
    const res = await call(`${api.url}/v1/events`, {
      key,
      body: { events: [event('dup-a'), event('dup-b'), event('dup-a')] },
    });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 2, duplicates: 1 });
    expect(await inboxRows('dup-a')).toHaveLength(1);
  });

  it('should count an event id seen in an earlier request as a duplicate and keep one row', async () => {
    await call(`${api.url}/v1/events`, { key, body: event('again') });
    const res = await call(`${api.url}/v1/events`, {
      key,
      body: { events: [event('again'), event('again-new')] },
    });
    expect(res.body).toEqual({ accepted: 1, duplicates: 1 });
    expect(await inboxRows('again')).toHaveLength(1);
  });

  it('should keep equal event ids of different tenants apart', async () => {
    const other = await api.createKey('globex', ['events:write']);
    await call(`${api.url}/v1/events`, { key, body: event('shared-id') });
    const res = await call(`${api.url}/v1/events`, { key: other, body: event('shared-id') });
    expect(res.body).toEqual({ accepted: 1, duplicates: 0 });
  });

  it('should accept a batch of exactly 500', async () => {
    const events = Array.from({ length: 500 }, (_, i) => event(`bulk-${i}`));
    const res = await call(`${api.url}/v1/events`, { key, body: { events } });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 500, duplicates: 0 });
  });

  describe('when the body is invalid', () => {
    it.each([
      ['malformed JSON', { rawBody: '{"event_id": ' }, 'invalid_json', '(root)'],
      ['a wrong type', { body: event('x', { event_id: 42 }) }, 'validation_error', 'event_id'],
      [
        'a missing field',
        { body: { event_id: 'x', event_type: 'TASK_CREATED' } },
        'validation_error',
        'task_id',
      ],
      [
        'a bad field inside a batch',
        { body: { events: [event('ok'), event('bad', { ts: 'yesterday' })] } },
        'validation_error',
        'events.1.ts',
      ],
      [
        'a batch over 500',
        { body: { events: Array.from({ length: 501 }, (_, i) => event(`e${i}`)) } },
        'validation_error',
        'events',
      ],
      ['an empty batch', { body: { events: [] } }, 'validation_error', 'events'],
      ['a JSON array', { body: [event('a')] }, 'validation_error', '(root)'],
      [
        'a NUL character Postgres cannot store',
        { body: event('nul', { payload: { note: 'a\u0000b' } }) },
        'validation_error',
        'payload.note',
      ],
    ])('should answer 400 naming the failing path for %s', async (_name, request, code, path) => {
      const res = await call(`${api.url}/v1/events`, { key, ...request });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe(code);
      expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
      expect(JSON.stringify(res.body)).not.toMatch(/\n\s+at /);
    });

    it('should store nothing from a batch with one bad event', async () => {
      await call(`${api.url}/v1/events`, {
        key,
        body: { events: [event('all-or-nothing'), event('bad', { task_id: '' })] },
      });
      expect(await inboxRows('all-or-nothing')).toHaveLength(0);
    });
  });

  it('should refuse a body that names another tenant, with 403 and the path', async () => {
    const res = await call(`${api.url}/v1/events`, {
      key,
      body: { events: [event('t-ok'), event('t-bad', { tenant_id: 'globex' })] },
    });
    expect(res.status).toBe(403);
    expect(res.body.error.details[0].path).toBe('events.1.tenant_id');
    expect(await inboxRows('t-ok')).toHaveLength(0);
  });

  it('should accept a body that names its own tenant', async () => {
    const res = await call(`${api.url}/v1/events`, { key, body: event('own-tenant', { tenant_id: 'acme' }) });
    expect(res.status).toBe(202);
  });
});

describe('POST /v1/events with a small body limit', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ MAX_BODY: '1kb' });
  });
  afterAll(async () => {
    await api.stop();
  });

  it('should answer 413 for a body over the limit and store nothing', async () => {
    const key = await api.createKey('acme', ['events:write']);
    const res = await call(`${api.url}/v1/events`, {
      key,
      body: event('big', { payload: { blob: 'x'.repeat(4096) } }),
    });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
    const rows = await api.db.selectFrom('supervisor_inbox').select('event_id').execute();
    expect(rows).toHaveLength(0);
  });
});

describe('when Redis is unreachable for the API', () => {
  let api: TestApi;
  beforeAll(async () => {
    // Port 1 refuses connections: the producer cannot reach Redis at all.
    api = await startTestApi({ REDIS_URL: 'redis://127.0.0.1:1', ENQUEUE_TIMEOUT_MS: '200' });
  });
  afterAll(async () => {
    await api.stop();
  });

  it('should still answer 202 with the event durable and pending in Postgres', async () => {
    const key = await api.createKey('acme', ['events:write']);
    const res = await call(`${api.url}/v1/events`, {
      key,
      body: { events: [event('no-redis-1'), event('no-redis-2')] },
    });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 2, duplicates: 0 });
    const rows = await api.db
      .selectFrom('supervisor_inbox')
      .select(['event_id', 'status'])
      .orderBy('event_id')
      .execute();
    expect(rows).toEqual([
      { event_id: 'no-redis-1', status: 'pending' },
      { event_id: 'no-redis-2', status: 'pending' },
    ]);
  });

  it('should answer single events sent at once 202 each, stored once, although their group could not be enqueued', async () => {
    const key = await api.createKey('acme', ['events:write']);
    const ids = Array.from({ length: 12 }, (_, i) => `no-redis-single-${i}`);
    const answers = await Promise.all(
      ids.map((id) => call(`${api.url}/v1/events`, { key, body: event(id) })),
    );
    // A failed enqueue must not look like a failed group: tried again, the rows would count as duplicates.
    for (const answer of answers)
      expect(answer).toMatchObject({ status: 202, body: { accepted: 1, duplicates: 0 } });
    const rows = await api.db
      .selectFrom('supervisor_inbox')
      .select(['event_id', 'status'])
      .where('event_id', 'like', 'no-redis-single-%')
      .execute();
    expect(rows.map((r) => r.event_id).sort()).toEqual([...ids].sort());
    for (const row of rows) expect(row.status).toBe('pending');
  });

  it('should report itself ready but degraded, naming Redis', async () => {
    const res = await call(`${api.url}/readyz`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('degraded');
    expect(res.body.checks.find((c: { name: string }) => c.name === 'redis').ok).toBe(false);
  });
});
