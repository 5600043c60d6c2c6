/**
 * Managing triggers through the API (the API reference (/openapi.json): scopes, tenants, validation, upsert, pause/resume with backfill,
 * trigger-now, status, keyset history, the weight gate), the CLI (`warden triggers …`) and the SDK — and the
 * example agent service: registered through `warden.cron`, it fires on time and its runs show in status and
 * history.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WardenApiError, WardenCron } from '@warden/client';
import { createProgram, exitCodeFor } from '@warden/cli';
import { deleteQueuePrefix, testServers } from '@warden/testing';
import { startInventoryService, type InventoryService } from '../../examples/cron-agent/inventory-service.js';
import { call, startTestApi, type TestApi } from '../support/api.js';
import {
  REPO_ROOT,
  startHandler,
  startTestScheduler,
  triggerAudits,
  waitUntil,
  type TestScheduler,
} from '../support/scheduler.js';
import type { TriggerWorker } from '@warden/client';

const TENANT = 'api-acme';
const OTHER = 'api-globex';
const NEVER = '0 0 1 1 *';

let api: TestApi;
let scheduler: TestScheduler;
let writeKey: string;
let readKey: string;
let tasksKey: string;
let otherKey: string;
const workers: TriggerWorker[] = [];

beforeAll(async () => {
  api = await startTestApi();
  scheduler = await startTestScheduler({ databaseUrl: api.database.url, prefix: api.prefix });
  writeKey = await api.createKey(TENANT, ['triggers:read', 'triggers:write']);
  readKey = await api.createKey(TENANT, ['triggers:read']);
  tasksKey = await api.createKey(TENANT, ['tasks:read']);
  otherKey = await api.createKey(OTHER, ['triggers:read', 'triggers:write']);
  workers.push(
    startHandler(
      api.prefix,
      TENANT,
      'api-agent',
      async (ctx) => ({ output: { params: ctx.params, manual: ctx.manual } }),
      { concurrency: 8 },
    ),
  );
});

afterAll(async () => {
  await Promise.allSettled(workers.map((w) => w.close()));
  await scheduler?.stop();
  await api?.stop();
  await deleteQueuePrefix(api.prefix);
});

const url = (path: string) => `${api.url}${path}`;
const definition = (event_name: string, extra: Record<string, unknown> = {}) => ({
  event_name,
  expression: NEVER,
  agent: { queue: 'api-agent' },
  retry_on_failure: false,
  ...extra,
});
async function waitForExecution(name: string, id: string, key = writeKey) {
  return waitUntil(`execution ${id}`, async () => {
    const res = await call(url(`/v1/triggers/${name}/executions/${id}`), { key });
    return res.status === 200 && !['pending', 'running'].includes(res.body.status) ? res.body : undefined;
  });
}

describe('auth and tenants', () => {
  it("should need a key with the right scope, and hide other tenants' triggers", async () => {
    expect((await call(url('/v1/triggers'))).status).toBe(401);
    expect((await call(url('/v1/triggers'), { key: tasksKey })).status).toBe(403);
    const refused = await call(url('/v1/triggers'), { key: readKey, body: definition('api-scope') });
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toMatch(/triggers:write/);

    expect((await call(url('/v1/triggers'), { key: writeKey, body: definition('api-private') })).status).toBe(
      201,
    );
    for (const path of [
      '/v1/triggers/api-private',
      '/v1/triggers/api-private/status',
      '/v1/triggers/api-private/executions',
    ]) {
      expect((await call(url(path), { key: otherKey })).status).toBe(404);
    }
    expect((await call(url('/v1/triggers/api-private/pause'), { key: otherKey, body: {} })).status).toBe(404);
    expect((await call(url('/v1/triggers'), { key: otherKey })).body.items).toEqual([]);
  });
});

describe('validation', () => {
  it.each([
    [{ expression: '*/5 * * * * *' }, 'expression', /6 fields/],
    [{ expression: '61 * * * *' }, 'expression', /minute field "61": 61 is out of range 0-59/],
    [{ timezone: 'Mars/Olympus' }, 'timezone', /not an IANA time zone/],
    [{ overlap_policy: 'queue' }, 'overlap_policy', /skip|buffer_one|allow/],
    [{ agent: { queue: 'x', url: 'http://y' } }, 'agent', /must be/],
    [{ migration_weight: 2 }, 'migration_weight', /<=1|less than or equal/i],
  ])('should answer 400 naming the field (%#)', async (extra, path, message) => {
    const res = await call(url('/v1/triggers'), { key: writeKey, body: definition('api-invalid', extra) });
    expect(res.status).toBe(400);
    const detail = res.body.error.details.find((d: { path: string }) => d.path === path);
    expect(detail, JSON.stringify(res.body)).toBeDefined();
    expect(detail.message).toMatch(message);
    expect(res.body.error.message).toMatch(new RegExp(`^invalid request body: .*${path}`));
  });

  it('should refuse bad query parameters and cursors with 400', async () => {
    expect((await call(url('/v1/triggers?limit=0'), { key: readKey })).status).toBe(400);
    expect(
      (await call(url('/v1/triggers?cursor=nonsense'), { key: readKey })).body.error.details[0].path,
    ).toBe('cursor');
    expect(
      (await call(url('/v1/triggers/api-private/executions?status=exploded'), { key: readKey })).status,
    ).toBe(400);
    expect((await call(url('/v1/triggers/bad name!'), { key: readKey })).status).toBe(400);
  });
});

describe('register, read, change, delete', () => {
  it('should upsert by name: 201 when new, 200 and changed=false when identical, 200 when changed', async () => {
    const first = await call(url('/v1/triggers'), {
      key: writeKey,
      body: definition('api-upsert', { tags: ['reports'] }),
    });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({
      created: true,
      changed: true,
      trigger: {
        event_name: 'api-upsert',
        timezone: 'UTC',
        overlap_policy: 'skip',
        migration_weight: 1,
        tenant_id: TENANT,
      },
    });
    const again = await call(url('/v1/triggers'), {
      key: writeKey,
      body: definition('api-upsert', { tags: ['reports'] }),
    });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ created: false, changed: false });
    const changed = await call(url('/v1/triggers'), {
      key: writeKey,
      body: definition('api-upsert', { tags: ['reports'], expression: '0 3 * * *' }),
    });
    expect(changed.body).toMatchObject({
      created: false,
      changed: true,
      trigger: { expression: '0 3 * * *' },
    });
    // The scheduler has a job scheduler for it, at the new time.
    const queue = api.service.queues()!.get('cron-fires');
    await waitUntil(
      'the job scheduler',
      async () => (await queue.getJobScheduler(first.body.trigger.trigger_id))?.pattern === '0 3 * * *',
    );
  });

  it('should list by tag and enabled, keyset-paginated', async () => {
    for (const name of ['api-list-a', 'api-list-b', 'api-list-c'])
      await call(url('/v1/triggers'), { key: writeKey, body: definition(name, { tags: ['listed'] }) });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { items: Array<{ event_name: string }>; next_cursor: string | null } } = await call(
        url(`/v1/triggers?tag=listed&limit=2${cursor ? `&cursor=${cursor}` : ''}`),
        { key: readKey },
      );
      seen.push(...page.body.items.map((t) => t.event_name));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual(['api-list-a', 'api-list-b', 'api-list-c']);
    expect((await call(url('/v1/triggers?enabled=false&tag=listed'), { key: readKey })).body.items).toEqual(
      [],
    );
  });

  it('should refuse raising the weight without shadow consistency (409) unless forced, auditing the change', async () => {
    await call(url('/v1/triggers'), {
      key: writeKey,
      body: definition('api-weight', { fallback: { queue: 'api-agent' }, migration_weight: 0 }),
    });
    const refused = await call(url('/v1/triggers/api-weight'), {
      method: 'PATCH',
      key: writeKey,
      body: { migration_weight: 0.5 },
    });
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toMatch(/needs consistency ≥ 99\.0 %/);
    // Forcing overrides the cutover gate: a triggers:write key alone may not (issue 11).
    const writerForcing = await call(url('/v1/triggers/api-weight?force=true'), {
      method: 'PATCH',
      key: writeKey,
      body: { migration_weight: 0.5 },
    });
    expect(writerForcing.status).toBe(403);
    expect(writerForcing.body.error.message).toMatch(/triggers:approve/);
    const forced = await call(url('/v1/triggers/api-weight?force=true'), {
      method: 'PATCH',
      key: await api.createKey(TENANT, ['triggers:write', 'triggers:approve']),
      body: { migration_weight: 0.5 },
    });
    expect(forced.status).toBe(200);
    expect(forced.body.trigger.migration_weight).toBe(0.5);
    const audit = (await triggerAudits(api.db, TENANT, 'api-weight')).find(
      (a) => a.event_type === 'MIGRATION_WEIGHT_CHANGED',
    )!;
    expect(audit.payload).toMatchObject({ from: 0, to: 0.5, forced: true });
    expect(String(audit.payload.by)).toMatch(/^api_key:/);
  });

  it('should redact HTTP target headers in answers', async () => {
    const res = await call(url('/v1/triggers'), {
      key: writeKey,
      body: definition('api-headers', {
        agent: {
          url: 'http://agent.internal/run',
          timeoutMs: 1000,
          headers: { authorization: 'Bearer s3cret' },
        },
      }),
    });
    expect(res.body.trigger.agent.headers).toEqual({ authorization: '[redacted]' });
    expect(
      JSON.stringify((await call(url('/v1/triggers/api-headers'), { key: readKey })).body),
    ).not.toContain('s3cret');
  });

  it('should take a lead_scan handler only from a key that may run lead scans', async () => {
    const scan = definition('api-lead-scan', { agent: null, fallback: { lead_scan: { window: '48H' } } });
    const refused = await call(url('/v1/triggers'), { key: writeKey, body: scan });
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toMatch(/"lead_scan" handler needs the "lead:run" scope/);
    expect((await call(url('/v1/triggers/api-lead-scan'), { key: readKey })).status).toBe(404);

    const scanner = await api.createKey(TENANT, ['triggers:read', 'triggers:write', 'lead:run']);
    const created = await call(url('/v1/triggers'), { key: scanner, body: scan });
    expect(created.status).toBe(201);
    expect(created.body.trigger.fallback).toEqual({ lead_scan: { window: '48h' } });
    // Its schedule is any trigger's to change; naming a lead_scan handler again needs lead:run again.
    const retimed = await call(url('/v1/triggers/api-lead-scan'), {
      method: 'PATCH',
      key: writeKey,
      body: { expression: '0 5 * * *' },
    });
    expect(retimed.status).toBe(200);
    const rewindowed = await call(url('/v1/triggers/api-lead-scan'), {
      method: 'PATCH',
      key: writeKey,
      body: { fallback: { lead_scan: { window: '7d' } } },
    });
    expect(rewindowed.status).toBe(403);
    const badWindow = await call(url('/v1/triggers/api-lead-scan'), {
      method: 'PATCH',
      key: scanner,
      body: { fallback: { lead_scan: { window: '3w' } } },
    });
    expect(badWindow.status).toBe(400);
  });

  it('should delete a trigger and its job scheduler, keeping the name free', async () => {
    const created = await call(url('/v1/triggers'), {
      key: writeKey,
      body: definition('api-delete', { expression: '@every 1h' }),
    });
    const queue = api.service.queues()!.get('cron-fires');
    await waitUntil(
      'the job scheduler',
      async () => (await queue.getJobScheduler(created.body.trigger.trigger_id)) !== undefined,
    );
    expect((await call(url('/v1/triggers/api-delete'), { method: 'DELETE', key: writeKey })).status).toBe(
      200,
    );
    expect((await call(url('/v1/triggers/api-delete'), { key: readKey })).status).toBe(404);
    await waitUntil(
      'the job scheduler to go',
      async () => (await queue.getJobScheduler(created.body.trigger.trigger_id)) === undefined,
    );
    expect((await call(url('/v1/triggers'), { key: writeKey, body: definition('api-delete') })).status).toBe(
      201,
    );
  });
});

describe('run now, history and status', () => {
  it('should run through governance, dedupe a retried request, and page through history newest first', async () => {
    await call(url('/v1/triggers'), {
      key: writeKey,
      body: definition('api-run', { overlap_policy: 'allow' }),
    });
    const run = await call(url('/v1/triggers/api-run/run'), {
      key: writeKey,
      body: { params: { region: 'eu' }, request_id: 'req-1' },
    });
    expect(run.status).toBe(202);
    expect(run.body.created).toBe(true);
    const retried = await call(url('/v1/triggers/api-run/run'), {
      key: writeKey,
      body: { params: { region: 'eu' }, request_id: 'req-1' },
    });
    expect(retried.body).toEqual({ ...run.body, created: false });
    const done = await waitForExecution('api-run', run.body.execution_id);
    expect(done).toMatchObject({
      status: 'success',
      manual: true,
      params: { region: 'eu' },
      output: { params: { region: 'eu' }, manual: true },
    });

    const ids = [run.body.execution_id];
    for (let i = 0; i < 4; i++)
      ids.push((await call(url('/v1/triggers/api-run/run'), { key: writeKey, body: {} })).body.execution_id);
    for (const id of ids) await waitForExecution('api-run', id);
    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const page: {
        body: { items: Array<{ execution_id: string; scheduled_for: string }>; next_cursor: string | null };
      } = await call(url(`/v1/triggers/api-run/executions?limit=2${cursor ? `&cursor=${cursor}` : ''}`), {
        key: readKey,
      });
      pages.push(page.body.items.map((e) => e.execution_id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(pages.flat()).toEqual([...ids].reverse());

    const status = await call(url('/v1/triggers/api-run/status?fires=3'), { key: readKey });
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({
      enabled: true,
      paused: false,
      window: { runs: 5, success_rate: 1, by_status: { success: 5 } },
      breaker: { state: 'closed' },
    });
    expect(status.body.next_fires).toHaveLength(3);
    expect(status.body.last_runs).toHaveLength(5);
    expect(status.body.recent_events.map((e: { event_type: string }) => e.event_type)).toContain(
      'TRIGGER_RUN_REQUESTED',
    );
  });

  it('should pause (fires recorded as skipped), resume with backfill, and run the missed fires', async () => {
    const created = await call(url('/v1/triggers'), {
      key: writeKey,
      body: definition('api-backfill', { expression: '@every 1s', catchup_window_seconds: 1 }),
    });
    const triggerId = created.body.trigger.trigger_id;
    expect(
      (
        await call(url('/v1/triggers/api-backfill/pause'), {
          key: writeKey,
          body: { note: 'vendor API down' },
        })
      ).body,
    ).toMatchObject({
      changed: true,
      trigger: { paused: true, pause: { source: 'manual', note: 'vendor API down' } },
    });
    await waitUntil('fires skipped while paused', async () => {
      const rows = await api.db
        .selectFrom('cron_executions')
        .selectAll()
        .where('trigger_id', '=', triggerId)
        .where('skip_reason', '=', 'paused')
        .execute();
      return rows.length >= 2;
    });
    const resumed = await call(url('/v1/triggers/api-backfill/resume'), {
      key: writeKey,
      body: { backfill: true },
    });
    expect(resumed.body.changed).toBe(true);
    expect(resumed.body.backfilled.length).toBeGreaterThanOrEqual(2);
    for (const b of resumed.body.backfilled as Array<{ execution_id: string }>) {
      const done = await waitForExecution('api-backfill', b.execution_id);
      expect(done).toMatchObject({ backfill: true, status: 'success' });
    }
    const skips = (
      await call(url('/v1/triggers/api-backfill/status'), { key: readKey })
    ).body.recent_events.map((e: { event_type: string }) => e.event_type);
    expect(skips).toEqual(expect.arrayContaining(['TRIGGER_PAUSED', 'TRIGGER_RESUMED']));
    await call(url('/v1/triggers/api-backfill'), {
      method: 'PATCH',
      key: writeKey,
      body: { enabled: false },
    });
  });
});

describe('the CLI', () => {
  const env = () => ({
    DATABASE_URL: api.database.url,
    REDIS_URL: testServers.redisUrl,
    QUEUE_PREFIX: api.prefix,
  });
  async function warden(args: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const program = createProgram({
      environment: { env: env(), cwd: REPO_ROOT },
      io: { out: (t) => void (out += t), err: (t) => void (err += t) },
    });
    try {
      await program.parseAsync(['node', 'warden', ...args]);
      return { code: 0, out, err };
    } catch (error) {
      return {
        code: exitCodeFor(error),
        out,
        err: err + (error instanceof Error ? error.message : String(error)),
      };
    }
  }

  it('should list, pause, resume, run, and show status and history', async () => {
    await call(url('/v1/triggers'), {
      key: writeKey,
      body: definition('cli-report', { description: 'nightly report' }),
    });
    const list = await warden(['triggers', 'list', '--tenant', TENANT]);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/^NAME\s+EXPRESSION\s+ZONE\s+STATE/);
    expect(list.out).toMatch(/cli-report\s+0 0 1 1 \*\s+UTC\s+active/);

    expect(
      (await warden(['triggers', 'pause', 'cli-report', '--tenant', TENANT, '--note', 'quarter close'])).out,
    ).toBe('paused cli-report: quarter close\n');
    const skipped = await warden(['triggers', 'run', 'cli-report', '--tenant', TENANT, '--wait']);
    expect(skipped.code).toBe(1);
    expect(skipped.err).toMatch(/cli-report skipped: paused/);
    expect((await warden(['triggers', 'resume', 'cli-report', '--tenant', TENANT])).out).toBe(
      'resumed cli-report\n',
    );
    const ran = await warden([
      'triggers',
      'run',
      'cli-report',
      '--tenant',
      TENANT,
      '--param',
      'region=eu',
      '--param',
      'limit=3',
      '--wait',
      '--json',
    ]);
    expect(ran.code).toBe(0);
    expect(JSON.parse(ran.out)).toMatchObject({ status: 'success', params: { region: 'eu', limit: 3 } });

    const status = await warden(['triggers', 'status', 'cli-report', '--tenant', TENANT]);
    expect(status.out).toMatch(/cli-report {2}0 0 1 1 \* {2}\(UTC\) — nightly report/);
    expect(status.out).toMatch(/2 fires · success rate 100\.0 %/);
    expect(status.out).toMatch(/skips\s+paused 1/);
    expect(status.out).toMatch(/TRIGGER_PAUSED\s+cli:\S+\s+quarter close/);

    const history = await warden(['triggers', 'history', 'cli-report', '--tenant', TENANT, '--limit', '1']);
    expect(history.out).toMatch(/^SCHEDULED FOR\s+STATUS/);
    expect(history.out).toMatch(/success\s+agent\s+manual/);
    const cursor = /more: --cursor (\S+)/.exec(history.out)![1]!;
    const older = await warden([
      'triggers',
      'history',
      'cli-report',
      '--tenant',
      TENANT,
      '--limit',
      '1',
      '--cursor',
      cursor,
    ]);
    expect(older.out).toMatch(/skipped\s+-\s+manual.*paused/);
  });

  it('should exit 2 on bad input and 1 on an unknown trigger, with one line and no stack', async () => {
    expect(
      await warden(['triggers', 'history', 'cli-report', '--tenant', TENANT, '--limit', '0']),
    ).toMatchObject({ code: 2, err: expect.stringMatching(/invalid --limit "0": must be at least 1/) });
    expect(
      await warden(['triggers', 'run', 'cli-report', '--tenant', TENANT, '--param', 'nokey']),
    ).toMatchObject({ code: 2, err: expect.stringMatching(/expected key=value/) });
    expect(await warden(['triggers', 'status', 'bad name', '--tenant', TENANT])).toMatchObject({ code: 2 });
    const missing = await warden(['triggers', 'status', 'no-such-trigger', '--tenant', TENANT]);
    expect(missing).toMatchObject({
      code: 1,
      err: 'trigger "no-such-trigger" not found for tenant "api-acme"',
    });

    // The same through the real binary: one line on stderr, exit code from errors.ts.
    const child = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const p = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'packages/cli/src/main.ts',
          'triggers',
          'pause',
          'no-such-trigger',
          '--tenant',
          TENANT,
        ],
        { cwd: REPO_ROOT, env: { ...process.env, ...env() } },
      );
      let stderr = '';
      p.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      p.on('close', (code) => resolve({ code, stderr }));
    });
    expect(child).toEqual({
      code: 1,
      stderr: 'error: trigger "no-such-trigger" not found for tenant "api-acme"\n',
    });
  }, 30_000);
});

describe('the SDK and the example agent service', () => {
  let service: InventoryService | undefined;
  afterAll(async () => {
    await service?.close();
  });

  it('should register through warden.cron, fire on time, and show its runs in status and history', async () => {
    service = await startInventoryService({
      apiUrl: api.url,
      apiKey: writeKey,
      redisUrl: testServers.redisUrl,
      queuePrefix: api.prefix,
      expression: '@every 1s',
    });
    expect(service.registration).toMatchObject({
      created: true,
      trigger: {
        event_name: 'inventory-check',
        mode: 'shadow',
        timezone: 'Europe/Rome',
        agent: { queue: 'inventory-check-agent' },
      },
    });
    const triggers = service.warden.triggers;
    const history = await waitUntil('three scheduled runs', async () => {
      const page = await triggers.history('inventory-check', { limit: 10 });
      const done = page.items.filter((e) => e.status === 'fallback');
      return done.length >= 3 ? page.items : undefined;
    });
    for (const run of history.filter((e) => e.status === 'fallback')) {
      expect(run).toMatchObject({
        manual: false,
        decision_mode: 'shadow',
        comparison: { equal: true, compared_keys: ['low_stock'] },
        output: { low_stock: ['A-100', 'C-300'] },
      });
      // On time: started within the catch-up window of its fire time (never skipped as missed).
      expect(new Date(run.started_at!).getTime() - new Date(run.scheduled_for).getTime()).toBeLessThan(
        300_000,
      );
    }
    const status = await triggers.status('inventory-check', { fires: 3 });
    expect(status.next_fires).toHaveLength(3);
    expect(status.migration.consistency.rate).toBe(1);
    expect(status.window.by_status.fallback).toBeGreaterThanOrEqual(3);
    expect(status.window.cost_usd).toBeGreaterThan(0);

    // Registering again on the next start of the service changes nothing.
    const restarted = await startInventoryService({
      apiUrl: api.url,
      apiKey: writeKey,
      redisUrl: testServers.redisUrl,
      queuePrefix: api.prefix,
      expression: '@every 1s',
    });
    expect(restarted.registration).toMatchObject({ created: false, changed: false });
    await restarted.close();
    await triggers.update('inventory-check', { enabled: false });
  });

  it('should surface API errors as WardenApiError with the field', async () => {
    const warden = new WardenCron({ baseUrl: api.url, apiKey: writeKey });
    const error = await warden
      .cron('sdk-bad', '*/5 * * * * *', { agent: { queue: 'x' } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WardenApiError);
    expect((error as WardenApiError).details[0]).toMatchObject({ path: 'expression' });
  });
});
