/**
 * Bull Board respects tenancy (docs/runbook.md, "Queues"): it spans every tenant's jobs, so only a platform
 * operator's key (bound to no tenant, scope `platform:operate`) opens it — never a tenant's key, admin
 * included. It is read-only unless BULL_BOARD_READ_ONLY=false, lists every queue the runbook tells operators
 * to check (trigger handler queues included), and names a trigger's jobs by the trigger's name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertApiKey, revokeOperatorKey } from '@warden/db';
import { ValidationError, displayPrefix, generateApiKey, hashApiKey } from '@warden/domain';
import { QUEUE_NAMES } from '@warden/queue';
import { call, startTestApi, type TestApi } from '../support/api.js';

const basic = (key: string) => ({ authorization: `Basic ${Buffer.from(`ops:${key}`).toString('base64')}` });
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('Bull Board', () => {
  let api: TestApi;
  let operator: string;
  let tenantAdmin: string;
  let triggerId: string;

  beforeAll(async () => {
    api = await startTestApi();
    operator = await api.createOperatorKey('ops@example.com');
    tenantAdmin = await api.createKey('bb-acme', ['admin'], 'root@acme.example');
    const trigger = await call(`${api.url}/v1/triggers`, {
      key: tenantAdmin,
      body: { event_name: 'nightly-report', expression: '0 3 * * *', agent: { queue: 'reports' } },
    });
    expect(trigger.status).toBe(201);
    triggerId = (
      await api.db
        .selectFrom('cron_triggers')
        .select('trigger_id')
        .where('tenant_id', '=', 'bb-acme')
        .where('event_name', '=', 'nightly-report')
        .executeTakeFirstOrThrow()
    ).trigger_id;
    // A fire of that trigger, as the scheduler's job scheduler adds it.
    await api.service
      .queues()!
      .enqueue(
        QUEUE_NAMES.cronFires,
        'fire',
        { tenant_id: 'bb-acme', trigger_id: triggerId },
        { delay: 3_600_000 },
      );
  });
  afterAll(async () => {
    await api?.stop();
  });

  const queues = async (key: string, query = '') =>
    call(`${api.url}/admin/queues/api/queues${query}`, { headers: basic(key) });

  describe('who may open it', () => {
    it('should challenge a browser when no credentials are sent, and refuse an unknown key', async () => {
      const none = await call(`${api.url}/admin/queues`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Basic /);
      expect((await call(`${api.url}/admin/queues`, { headers: basic('wk_not_a_key') })).status).toBe(401);
    });

    it("should refuse a tenant's admin key (Basic or Bearer) with a 403 naming what is needed", async () => {
      for (const headers of [basic(tenantAdmin), bearer(tenantAdmin)]) {
        const res = await call(`${api.url}/admin/queues/api/queues`, { headers });
        expect(res.status).toBe(403);
        expect(res.body.error.message).toMatch(/tenant's API key.*platform:operate/);
        expect(JSON.stringify(res.body)).not.toContain('nightly-report');
      }
    });

    it("should never let a tenant's key hold platform:operate", async () => {
      const key = generateApiKey();
      await expect(
        insertApiKey(api.db, {
          tenantId: 'bb-acme',
          name: 'sneaky',
          owner: 'mallory',
          keyHash: hashApiKey(key),
          keyPrefix: displayPrefix(key),
          scopes: ['admin', 'platform:operate'],
        }),
      ).rejects.toBeInstanceOf(ValidationError);
      // Nor a row written around the repository: the table refuses it.
      await expect(
        api.db
          .insertInto('api_keys')
          .values({
            tenant_id: 'bb-acme',
            name: 'raw',
            owner: 'mallory',
            key_hash: hashApiKey(generateApiKey()),
            key_prefix: 'wk_raw',
            scopes: ['platform:operate'],
          })
          .execute(),
      ).rejects.toThrow(/api_keys_no_platform_scopes/);
    });

    it('should refuse an operator key once revoked', async () => {
      const revoked = await api.createOperatorKey('leaver@example.com');
      const row = await api.db
        .selectFrom('operator_keys')
        .select('key_id')
        .where('key_hash', '=', hashApiKey(revoked))
        .executeTakeFirstOrThrow();
      expect((await queues(revoked)).status).toBe(200);
      expect(await revokeOperatorKey(api.db, row.key_id)).toBe(true);
      expect((await queues(revoked)).status).toBe(401);
    });
  });

  describe("with a platform operator's key", () => {
    it('should list every queue the runbook names, the trigger handler queue included', async () => {
      const res = await queues(operator);
      expect(res.status).toBe(200);
      const names = res.body.queues.map((q: { name: string }) => q.name);
      for (const name of [
        'supervisor-events',
        'cron-fires',
        'cron-results',
        'lead-scans',
        'changesets',
        'notifications',
        'cron-handler.bb-acme.reports',
      ])
        expect(names).toContain(name);
      expect(res.body.queues.every((q: { readOnlyMode: boolean }) => q.readOnlyMode)).toBe(true);
    });

    it("should name a trigger's jobs by the trigger, not its UUID", async () => {
      const res = await queues(operator, '?activeQueue=cron-fires&status=delayed&page=1');
      const fires = res.body.queues.find((q: { name: string }) => q.name === 'cron-fires');
      const job = fires.jobs.find((j: { data: { trigger_id?: string } }) => j.data.trigger_id === triggerId);
      expect(job.name).toBe('fire · bb-acme/nightly-report');
      expect(job.data.trigger).toBe('bb-acme/nightly-report');
    });

    it.each([
      ['pause a queue', 'PUT', '/api/queues/cron-fires/pause'],
      ['pause every queue', 'PUT', '/api/queues/pause'],
      ['clean a queue', 'PUT', '/api/queues/cron-fires/clean/delayed'],
      ['obliterate a queue', 'PUT', '/api/queues/cron-fires/obliterate'],
      ['empty a queue', 'PUT', '/api/queues/cron-fires/empty'],
      ['add a job', 'POST', '/api/queues/cron-fires/add'],
      ['retry jobs', 'PUT', '/api/queues/cron-fires/retry/failed'],
    ])('should refuse to %s while read-only', async (_, method, path) => {
      const res = await call(`${api.url}/admin/queues${path}`, {
        method,
        headers: { ...basic(operator), 'content-type': 'application/json' },
        rawBody: '{}',
      });
      expect(res.status).toBe(403);
      expect(res.body.error.message).toMatch(/read-only/);
      const counts = await api.service.queues()!.get('cron-fires').getJobCounts('delayed');
      expect(counts.delayed).toBeGreaterThanOrEqual(1);
      expect(await api.service.queues()!.get('cron-fires').isPaused()).toBe(false);
    });
  });

  describe('when BULL_BOARD_READ_ONLY=false', () => {
    it('should let an operator act on a queue', async () => {
      const writable = await startTestApi({ BULL_BOARD_READ_ONLY: 'false' });
      try {
        const key = await writable.createOperatorKey();
        const listed = await call(`${writable.url}/admin/queues/api/queues`, { headers: basic(key) });
        expect(listed.body.queues.every((q: { readOnlyMode: boolean }) => !q.readOnlyMode)).toBe(true);
        const res = await call(`${writable.url}/admin/queues/api/queues/lead-scans/pause`, {
          method: 'PUT',
          headers: basic(key),
        });
        expect(res.status).toBe(200);
        expect(await writable.service.queues()!.get('lead-scans').isPaused()).toBe(true);
      } finally {
        await writable.stop();
      }
    });
  });
});
