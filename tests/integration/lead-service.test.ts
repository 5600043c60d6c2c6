/**
 * The lead miner as deployed: the real API queues scans on `lead-scans`, the real lead-miner service consumes
 * them (the default scans are the scheduler's triggers: lead-scan-triggers.test.ts), and the lead routes read
 * and change findings — scoped by tenant and API-key scope, every input validated.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { sql } from 'kysely';
import { findLeadScan } from '@warden/db';
import { createRedis } from '@warden/queue';
import { testServers } from '@warden/testing';
import type { DecisionProcessor } from '../../services/supervisor-worker/src/index.js';
import {
  createLeadMinerService,
  loadConfig,
  type LeadMinerService,
} from '../../services/lead-miner/src/index.js';
import { call, startTestApi, type TestApi } from '../support/api.js';
import { LEAD_RULES_FILE, countRows, decide, supervisorFor, taskEvents, waitFor } from '../support/lead.js';

describe('lead scans through the API and the lead-miner service', () => {
  let api: TestApi;
  let miner: LeadMinerService;
  let supervisor: DecisionProcessor;
  let runner: string;
  let reader: string;
  let other: string;

  /** Waits until the scan has run and returns it as the API shows it. */
  async function finished(scanId: string, key = runner): Promise<any> {
    return waitFor(async () => {
      const res = await call(`${api.url}/v1/lead/scans/${scanId}`, { key });
      return ['completed', 'failed', 'skipped'].includes(res.body.status) ? res.body : undefined;
    }, `lead scan ${scanId} to finish`);
  }

  beforeAll(async () => {
    api = await startTestApi();
    // What an earlier lead miner left in Redis: its own job schedulers of the default scans.
    const connection = createRedis(testServers.redisUrl, 'general');
    const legacy = new Queue('lead-scans', { connection, prefix: api.prefix });
    for (const [id, window] of [
      ['lead-scan-24h', '24h'],
      ['lead-scan-7d', '7d'],
    ] as const)
      await legacy.upsertJobScheduler(
        id,
        { pattern: '0 2 * * *', tz: 'UTC' },
        { name: 'scan-all', data: { window, dry_run: false } },
      );
    await legacy.close();
    connection.disconnect();
    miner = createLeadMinerService(
      loadConfig({
        DATABASE_URL: api.database.url,
        REDIS_URL: testServers.redisUrl,
        QUEUE_PREFIX: api.prefix,
        OPS_PORT: '0',
        LOG_LEVEL: 'silent',
        LEAD_RULES_FILE,
      }),
    );
    await miner.start();
    runner = await api.createKey('acme', ['lead:run', 'lead:read']);
    reader = await api.createKey('acme', ['lead:read']);
    other = await api.createKey('globex', ['lead:run', 'lead:read']);
    supervisor = supervisorFor(api.db);
    // Six blocks for one redline: a spike; plenty of LOW findings so the REDLINE share stays at the baseline edge.
    await decide(supervisor, [
      ...Array.from({ length: 6 }, (_, i) => taskEvents('acme', `spike-${i}`, ['forbiddenCommand'])).flat(),
      ...taskEvents(
        'acme',
        'busy',
        Array.from({ length: 34 }, () => 'stepWithWarning' as const),
      ),
    ]);
  });
  afterAll(async () => {
    await miner?.stop();
    await api?.stop();
  });

  it('should remove the job schedulers an earlier version kept for the default scans, and add none', async () => {
    expect(await miner.queues()!.get('lead-scans').getJobSchedulers()).toEqual([]);
  });

  describe('POST /v1/lead/scans', () => {
    it('should queue a scan, record it at once, and have the lead-miner run it', async () => {
      const res = await call(`${api.url}/v1/lead/scans`, { key: runner, body: { window: '24h' } });
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({
        status: 'queued',
        window_kind: '24h',
        trigger: 'api',
        dry_run: false,
        requested_by: expect.stringMatching(/^api_key:/),
      });
      expect(res.headers.get('location')).toBe(`/v1/lead/scans/${res.body.scan_id}`);
      const scan = await finished(res.body.scan_id);
      expect(scan).toMatchObject({
        status: 'completed',
        error: null,
        stats: { raw_findings: 1, new_findings: 1, tasks_created: 1 },
        window: { start: expect.any(String) },
      });

      const list = await call(`${api.url}/v1/lead/scans?limit=1`, { key: reader });
      expect(list.status).toBe(200);
      expect(list.body.items[0].scan_id).toBe(res.body.scan_id);
    });

    it('should run a redelivered job of a finished scan no second time', async () => {
      const res = await call(`${api.url}/v1/lead/scans`, {
        key: runner,
        body: { window: '7d', dry_run: true },
      });
      const scan = await finished(res.body.scan_id);
      expect(scan).toMatchObject({ status: 'completed', dry_run: true });
      const job = await miner
        .queues()!
        .enqueue(
          'lead-scans',
          'scan',
          { tenant_id: 'acme', window: '7d', dry_run: true, scan_id: res.body.scan_id, trigger: 'api' },
          { jobId: `redelivered-${res.body.scan_id}` },
        );
      const queue = miner.queues()!.get('lead-scans');
      const result = await waitFor(
        async () => ((await queue.getJob(job!))?.returnvalue ?? undefined) as { status: string } | undefined,
        'the redelivered job',
      );
      expect(result).toEqual({ status: 'already_handled', scan_id: res.body.scan_id });
      expect((await findLeadScan(api.db, 'acme', res.body.scan_id))?.completed_at).toBe(scan.completed_at);
    });

    it('should refuse a bad window with 400 naming the field, and a key without lead:run with 403', async () => {
      const bad = await call(`${api.url}/v1/lead/scans`, { key: runner, body: { window: '3w' } });
      expect(bad.status).toBe(400);
      expect(bad.body.error.details).toEqual([expect.objectContaining({ path: 'window' })]);
      const unknown = await call(`${api.url}/v1/lead/scans`, {
        key: runner,
        body: { window: '24h', windwo: '7d' },
      });
      expect(unknown.status).toBe(400);
      const forbidden = await call(`${api.url}/v1/lead/scans`, { key: reader, body: {} });
      expect(forbidden.status).toBe(403);
      expect(await countRows(api.db, 'lead_scans', 'acme', sql`status = 'queued'`)).toBe(0);
    });
  });

  describe('GET /v1/lead/findings', () => {
    it('should filter by severity, status and unlinked, and hide other tenants', async () => {
      const high = await call(`${api.url}/v1/lead/findings?severity=HIGH&status=open&unlinked=false`, {
        key: reader,
      });
      expect(high.status).toBe(200);
      expect(high.body.items).toHaveLength(1);
      expect(high.body.items[0]).toMatchObject({
        code: 'blocked_reason_spike',
        severity: 'HIGH',
        status: 'open',
        linked_task_id: expect.stringMatching(/^lead-/),
        count: 1,
      });
      expect((await call(`${api.url}/v1/lead/findings?unlinked=true`, { key: reader })).body.items).toEqual(
        [],
      );
      expect((await call(`${api.url}/v1/lead/findings?severity=LOW`, { key: reader })).body.items).toEqual(
        [],
      );
      expect((await call(`${api.url}/v1/lead/findings`, { key: other })).body.items).toEqual([]);

      const fingerprint = high.body.items[0].fingerprint;
      expect(
        (await call(`${api.url}/v1/lead/findings/${fingerprint}`, { key: reader })).body.fingerprint,
      ).toBe(fingerprint);
      expect((await call(`${api.url}/v1/lead/findings/${fingerprint}`, { key: other })).status).toBe(404);
      const invalid = await call(`${api.url}/v1/lead/findings?severity=SEVERE`, { key: reader });
      expect(invalid.status).toBe(400);
      expect(invalid.body.error.details[0].path).toBe('severity');
    });
  });

  describe('resolving and silencing', () => {
    it('should resolve once (409 the second time), silence for a while, refuse other tenants and readers', async () => {
      const [finding] = (await call(`${api.url}/v1/lead/findings`, { key: reader })).body.items;
      const url = `${api.url}/v1/lead/findings/${finding.fingerprint}`;
      expect((await call(`${url}/resolve`, { key: reader, body: {} })).status).toBe(403);
      expect((await call(`${url}/resolve`, { key: other, body: {} })).status).toBe(404);

      const resolved = await call(`${url}/resolve`, { key: runner, body: { note: 'agent fixed' } });
      expect(resolved.status).toBe(200);
      expect(resolved.body).toMatchObject({
        status: 'resolved',
        resolved_by: expect.stringMatching(/^api_key:/),
        note: 'agent fixed',
      });
      expect((await call(`${url}/resolve`, { key: runner, body: {} })).status).toBe(409);

      const past = await call(`${url}/silence`, { key: runner, body: { until: '2020-01-01T00:00:00Z' } });
      expect(past.status).toBe(400);
      expect(past.body.error.details).toEqual([
        { path: 'until', message: 'the silence must end in the future' },
      ]);
      const silenced = await call(`${url}/silence`, { key: runner, body: { for: '2h' } });
      expect(silenced.status).toBe(200);
      expect(silenced.body.status).toBe('silenced');
      const hours = (Date.parse(silenced.body.silenced_until) - Date.now()) / 3_600_000;
      expect(hours).toBeGreaterThan(1.9);
      expect(hours).toBeLessThanOrEqual(2);

      const audits = await call(`${api.url}/v1/tasks/${finding.linked_task_id}/audits`, {
        key: await api.createKey('acme', ['tasks:read']),
      });
      expect(audits.body.items.map((a: { event_type: string }) => a.event_type)).toEqual([
        'LEAD_FINDING_LINKED',
        'LEAD_FINDING_RESOLVED',
        'LEAD_FINDING_SILENCED',
      ]);
    });
  });

  it('should expose its series on /metrics', async () => {
    const res = await fetch(`http://127.0.0.1:${miner.runtime()!.ops!.port}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/^lead_scans_total\{window="24h",status="completed"[^}]*\} 1$/m);
    expect(text).toMatch(/^lead_follow_up_tasks_created_total\{severity="HIGH"[^}]*\} 1$/m);
    expect(text).toMatch(/^lead_last_success_timestamp_seconds\{window="24h"[^}]*\} \d+/m);
  });
});
