/**
 * The default lead scans as triggers of the scheduler (docs/lead-miner.md, "Scheduling"): the real scheduler
 * gives every tenant the built-in `lead-scan-24h` and `lead-scan-7d` triggers, a fire puts a `scan` job on
 * `lead-scans`, the real lead-miner service runs the scan and reports back on `cron-results`, and the trigger's
 * governance applies — pausing stops the scans, a failed scan is a failed run the breaker counts.
 */
import { sql } from 'kysely';
import { createProgram, exitCodeFor } from '@warden/cli';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deleteTrigger,
  ensureTenant,
  getTrigger,
  listTriggers,
  pauseTrigger,
  resumeTrigger,
  updateTrigger,
  type TriggerRecord,
} from '@warden/db';
import {
  createTestDatabase,
  deleteQueuePrefix,
  testQueuePrefix,
  testServers,
  type TestDatabase,
} from '@warden/testing';
import {
  createLeadMinerService,
  loadConfig as loadLeadMinerConfig,
  type LeadMinerService,
} from '../../services/lead-miner/src/index.js';
import { LEAD_RULES_FILE, decide, supervisorFor, taskEvents } from '../support/lead.js';
import {
  REPO_ROOT,
  executions,
  registerTestTrigger,
  runNow,
  startTestScheduler,
  testQueues,
  triggerAudits,
  waitForFinished,
  waitUntil,
  type TestScheduler,
} from '../support/scheduler.js';

let database: TestDatabase;
let prefix: string;
let scheduler: TestScheduler;
let miner: LeadMinerService;
let queues: ReturnType<typeof testQueues>;

const trigger = (tenantId: string, eventName: string): Promise<TriggerRecord> =>
  getTrigger(database.db, tenantId, eventName);

/** `warden …` in this process, against the test's database and queue prefix. */
async function warden(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const program = createProgram({
    environment: {
      env: { DATABASE_URL: database.url, REDIS_URL: testServers.redisUrl, QUEUE_PREFIX: prefix },
      cwd: REPO_ROOT,
    },
    io: { out: (t) => void (out += t), err: () => {} },
  });
  try {
    await program.parseAsync(['node', 'warden', ...args]);
    return { code: 0, out };
  } catch (error) {
    return { code: exitCodeFor(error), out };
  }
}

async function scansOf(tenantId: string, requestedBy: string) {
  return database.db
    .selectFrom('lead_scans')
    .select(['scan_id', 'status', 'trigger', 'window_kind', 'requested_by', 'error'])
    .where('tenant_id', '=', tenantId)
    .where('requested_by', '=', requestedBy)
    .orderBy('created_at')
    .execute();
}

beforeAll(async () => {
  database = await createTestDatabase();
  prefix = testQueuePrefix();
  queues = testQueues(prefix);
  // Two tenants that exist before the scheduler starts: it gives them the built-in triggers at start.
  await ensureTenant(database.db, 'acme');
  await ensureTenant(database.db, 'globex');
  // Six blocks for one redline in acme: a `blocked_reason_spike` for any 24h scan to find.
  await decide(
    supervisorFor(database.db),
    Array.from({ length: 6 }, (_, i) => taskEvents('acme', `spike-${i}`, ['forbiddenCommand'])).flat(),
  );
  miner = createLeadMinerService(
    loadLeadMinerConfig({
      DATABASE_URL: database.url,
      REDIS_URL: testServers.redisUrl,
      QUEUE_PREFIX: prefix,
      OPS_PORT: '0',
      LOG_LEVEL: 'silent',
      LEAD_RULES_FILE,
      WORKER_CONCURRENCY: '2',
    }),
  );
  await miner.start();
  scheduler = await startTestScheduler({
    databaseUrl: database.url,
    prefix,
    env: { LEAD_SCAN_TRIGGERS: 'on' },
  });
});

afterAll(async () => {
  await scheduler?.stop();
  await miner?.stop();
  await queues?.disconnect();
  await database?.drop();
  await deleteQueuePrefix(prefix);
});

describe('the built-in lead-scan triggers', () => {
  it('should exist for every tenant at start, with the default schedules, scheduled and audited', async () => {
    for (const tenant of ['acme', 'globex']) {
      const { items } = await listTriggers(database.db, tenant, { limit: 100 });
      expect(items.map((t) => [t.event_name, t.expression, t.timezone, t.fallback, t.agent])).toEqual([
        ['lead-scan-24h', '0 2 * * *', 'UTC', { lead_scan: { window: '24h' } }, null],
        ['lead-scan-7d', '0 3 * * 1', 'UTC', { lead_scan: { window: '7d' } }, null],
      ]);
      expect(items.every((t) => t.enabled && t.tags.includes('builtin'))).toBe(true);
      const audits = await triggerAudits(database.db, tenant, 'lead-scan-24h');
      expect(audits.map((a) => [a.event_type, (a.payload as { by?: string }).by])).toEqual([
        ['TRIGGER_REGISTERED', 'scheduler'],
      ]);
    }
    // Each has its job scheduler on cron-fires, like any trigger (Bull Board shows them there).
    const schedulers = await queues.get('cron-fires').getJobSchedulers(0, -1);
    const acme24h = await trigger('acme', 'lead-scan-24h');
    expect(schedulers.find((s) => s.key === acme24h.trigger_id)).toMatchObject({ pattern: '0 2 * * *' });
    expect(schedulers).toHaveLength(4);

    // Operators see them where they see any trigger.
    const list = await warden(['triggers', 'list', '--tenant', 'acme', '--tag', 'builtin', '--json']);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.out).items.map((t: { event_name: string }) => t.event_name)).toEqual([
      'lead-scan-24h',
      'lead-scan-7d',
    ]);
    const status = await warden(['triggers', 'status', 'lead-scan-7d', '--tenant', 'acme']);
    expect(status.out).toContain('fallback lead scan 7d');
  });

  it('should give a new tenant its triggers once, never re-create one an operator deleted, and keep changes', async () => {
    const seeder = scheduler.service.builtInTriggers()!;
    await ensureTenant(database.db, 'initech');
    expect(await seeder.seed()).toHaveLength(2);
    expect(await seeder.seed()).toEqual([]);

    await database.db.transaction().execute(async (trx) => {
      await deleteTrigger(trx, { tenantId: 'initech', eventName: 'lead-scan-7d', actor: 'test' });
      await updateTrigger(trx, {
        tenantId: 'initech',
        eventName: 'lead-scan-24h',
        patch: { expression: '30 4 * * *' },
        actor: 'test',
      });
    });
    expect(await seeder.seed()).toEqual([]);
    const { items } = await listTriggers(database.db, 'initech', { limit: 100 });
    expect(items.map((t) => [t.event_name, t.expression])).toEqual([['lead-scan-24h', '30 4 * * *']]);
  });
});

describe('a lead-scan trigger fires', () => {
  it('should have the lead miner scan the tenant, and end the run with the scan', async () => {
    const acme24h = await trigger('acme', 'lead-scan-24h');
    const executionId = await runNow(database.db, queues, acme24h);
    const run = await waitForFinished(database.db, executionId, 60_000);

    const [scan] = await scansOf('acme', 'trigger:lead-scan-24h');
    expect(scan).toMatchObject({ status: 'completed', trigger: 'schedule', window_kind: '24h' });
    expect(run).toMatchObject({ status: 'fallback', decision_mode: 'fallback', error: null });
    const findings = await database.db
      .selectFrom('lead_findings')
      .select(['code', 'last_scan_id', 'linked_task_id'])
      .where('tenant_id', '=', 'acme')
      .execute();
    expect(findings.map((f) => f.code)).toContain('blocked_reason_spike');
    expect(
      findings.every((f) => f.last_scan_id === scan!.scan_id && f.linked_task_id?.startsWith('lead-')),
    ).toBe(true);
    expect(run.output).toEqual({
      status: 'completed',
      scan_id: scan!.scan_id,
      window: '24h',
      new_findings: findings.length,
      tasks_created: findings.length,
    });
    const attempts = await database.db
      .selectFrom('cron_execution_attempts')
      .select(['role', 'target_kind', 'target', 'status'])
      .where('execution_id', '=', executionId)
      .execute();
    expect(attempts).toEqual([
      { role: 'fallback', target_kind: 'lead_scan', target: '24h', status: 'success' },
    ]);
    // The scan job is on lead-scans with an id derived from the call: a repeated dispatch adds nothing.
    const jobs = await queues.get('lead-scans').getJobs(['completed']);
    expect(jobs.filter((j) => j.data.trigger_call?.execution_id === executionId)).toHaveLength(1);
  });

  it('should scan on the schedule an operator sets, stop while paused and scan again once resumed', async () => {
    const eventName = 'lead-scan-24h';
    await database.db.transaction().execute((trx) =>
      updateTrigger(trx, {
        tenantId: 'globex',
        eventName,
        patch: { expression: '@every 2s' },
        actor: 'test',
      }),
    );
    const globex24h = await trigger('globex', eventName);
    await queues.enqueue('cron-fires', 'reconcile', { trigger_id: globex24h.trigger_id });
    await waitUntil(
      'two scheduled scans of globex',
      async () =>
        (await scansOf('globex', `trigger:${eventName}`)).filter((s) => s.status === 'completed').length >= 2,
      { timeoutMs: 60_000 },
    );

    await database.db
      .transaction()
      .execute((trx) => pauseTrigger(trx, { tenantId: 'globex', eventName, actor: 'test', note: 'quiet' }));
    const pausedAt = new Date();
    // Fires keep coming while paused (recorded as skipped), and a run dispatched before the pause finishes.
    const rows = await waitUntil(
      'two paused fires and nothing in flight',
      async () => {
        const all = await executions(database.db, globex24h.trigger_id);
        const pausedFires = all.filter((r) => r.skip_reason === 'paused' && r.scheduled_for > pausedAt);
        const inFlight = all.some((r) => r.status === 'pending' || r.status === 'running');
        return pausedFires.length >= 2 && !inFlight ? all : undefined;
      },
      { timeoutMs: 60_000 },
    );
    const ran = rows.filter((r) => r.status === 'fallback');
    const scansWhilePaused = await scansOf('globex', `trigger:${eventName}`);
    // One scan per run that ran: none for the fires skipped while paused.
    expect(scansWhilePaused).toHaveLength(ran.length);
    expect(rows.filter((r) => r.scheduled_for > pausedAt).every((r) => r.status === 'skipped')).toBe(true);

    await database.db
      .transaction()
      .execute((trx) => resumeTrigger(trx, { tenantId: 'globex', eventName, actor: 'test', maxBackfill: 0 }));
    await waitUntil(
      'a scan after the resume',
      async () => (await scansOf('globex', `trigger:${eventName}`)).length > scansWhilePaused.length,
      { timeoutMs: 60_000 },
    );
    await database.db
      .transaction()
      .execute((trx) => pauseTrigger(trx, { tenantId: 'globex', eventName, actor: 'test' }));
  });

  it('should fail the run when the scan fails, and let the breaker count it', async () => {
    // Scans of the 12h window cannot be recorded: the scan fails in the lead miner, as it would with Postgres
    // refusing its writes. Other windows are untouched.
    await sql`alter table lead_scans add constraint lead_scans_test_refuse_12h check (window_kind <> '12h') not valid`.execute(
      database.db,
    );
    try {
      const failing = await registerTestTrigger(database.db, queues, 'acme', {
        event_name: 'lead-scan-12h',
        expression: '0 0 1 1 *',
        fallback: { lead_scan: { window: '12h' } },
        circuit_breaker: { window: 1, min_runs: 1, failure_threshold: 0 },
      });
      const executionId = await runNow(database.db, queues, failing);
      const run = await waitForFinished(database.db, executionId, 60_000);
      expect(run.status).toBe('failed');
      expect(run.error).toMatch(/lead_scans_test_refuse_12h/);
      const after = await database.db
        .selectFrom('cron_triggers')
        .select(['breaker_state', 'paused', 'pause_source'])
        .where('trigger_id', '=', failing.trigger_id)
        .executeTakeFirstOrThrow();
      expect(after).toEqual({ breaker_state: 'open', paused: true, pause_source: 'circuit_breaker' });
    } finally {
      await sql`alter table lead_scans drop constraint lead_scans_test_refuse_12h`.execute(database.db);
    }
  });
});
