/**
 * The ten integration cases of the predecessor's lead scan job (seeds/000, "1.3 集成测试"), against real
 * Postgres and Redis, over decisions made by the real supervisor path: dry run, real run, a blocked spike,
 * duplicate prevention, concurrent protection, a concurrent scan skipped, CLI help, CLI dry run, window
 * validation, an empty window — plus an unreachable database from the CLI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { LeadScanAlreadyHandledError, leadScanLockKey, runLeadScan } from '@warden/lead-engine';
import { LEAD_SCAN_SKIPPED_MESSAGE } from '@warden/domain';
import {
  createTestDatabase,
  deleteQueuePrefix,
  testQueuePrefix,
  testServers,
  type TestDatabase,
} from '@warden/testing';
import type { DecisionProcessor } from '../../services/supervisor-worker/src/index.js';
import {
  countRows,
  decide,
  findingsOf,
  leadAudits,
  leadRules,
  runWarden,
  scan,
  supervisorFor,
  taskEvents,
  testLeadLock,
} from '../support/lead.js';

/** Each CLI start loads TypeScript sources: seconds on a busy machine. */
const CLI_TIMEOUT_MS = 90_000;

describe('lead scan job (the ten seed cases)', () => {
  let database: TestDatabase;
  let supervisor: DecisionProcessor;
  let lock: ReturnType<typeof testLeadLock>;
  const prefix = testQueuePrefix();

  /**
   * Six tasks blocked for the same redline — a spike (more than five), the one finding of these cases — among
   * 34 steps with a warning, so REDLINE findings are 15 % of all: not more than 0.10 over the 5 % baseline.
   */
  async function seedSpike(tenant: string): Promise<void> {
    const blocks = Array.from({ length: 6 }, (_, i) =>
      taskEvents(tenant, `spike-${i}`, ['forbiddenCommand']),
    ).flat();
    const warnings = taskEvents(
      tenant,
      'busy',
      Array.from({ length: 34 }, () => 'stepWithWarning' as const),
    );
    await decide(supervisor, [...blocks, ...warnings]);
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    supervisor = supervisorFor(database.db);
    lock = testLeadLock();
  });
  afterAll(async () => {
    lock.close();
    await database.drop();
    await deleteQueuePrefix(prefix);
  });

  describe('when run as a dry run', () => {
    it('should report what it would create and write no finding, task or audit row', async () => {
      await seedSpike('dry');
      const tasksBefore = await countRows(database.db, 'tasks', 'dry');
      const report = await scan(database.db, 'dry', { dryRun: true });

      expect(report).toMatchObject({
        status: 'completed',
        dry_run: true,
        tasks_created: 0,
        window_kind: '24h',
      });
      expect(report.stats).toMatchObject({
        raw_findings: 1,
        new_findings: 1,
        duplicate_findings: 0,
        tasks_created: 0,
        tasks_skipped: 1,
        error: null,
      });
      expect(report.findings[0]).toMatchObject({
        code: 'blocked_reason_spike',
        outcome: 'new',
        would_create_task: true,
        task_created: false,
      });
      expect(report.findings[0]!.task_id).toBe(`lead-${report.findings[0]!.fingerprint}`);
      expect(await countRows(database.db, 'lead_findings', 'dry')).toBe(0);
      expect(await countRows(database.db, 'tasks', 'dry')).toBe(tasksBefore);
      expect(await leadAudits(database.db, 'dry')).toEqual([]);
      // The scan itself is on record, marked as a dry run.
      const scans = await database.db
        .selectFrom('lead_scans')
        .selectAll()
        .where('tenant_id', '=', 'dry')
        .execute();
      expect(scans).toHaveLength(1);
      expect(scans[0]).toMatchObject({ dry_run: true, status: 'completed', trigger: 'cli' });
    });
  });

  describe('when run for real', () => {
    it('should store the findings, and create and link one follow-up task each with its audit row', async () => {
      await seedSpike('real');
      const report = await scan(database.db, 'real');
      expect(report).toMatchObject({
        status: 'completed',
        dry_run: false,
        findings_count: 1,
        tasks_created: 1,
      });
      const [finding] = report.findings;
      const stored = await database.db
        .selectFrom('lead_findings')
        .selectAll()
        .where('tenant_id', '=', 'real')
        .executeTakeFirstOrThrow();
      expect(stored).toMatchObject({
        fingerprint: finding!.fingerprint,
        code: 'blocked_reason_spike',
        status: 'open',
        count: 1,
        linked_task_id: `lead-${finding!.fingerprint}`,
      });
      const task = await database.db
        .selectFrom('tasks')
        .selectAll()
        .where('tenant_id', '=', 'real')
        .where('task_id', '=', stored.linked_task_id!)
        .executeTakeFirstOrThrow();
      expect(task.status).toBe('ready');
      expect(task.metadata).toMatchObject({
        kind: 'lead_follow_up',
        priority: 2,
        title: `[LEAD][24h] blocked_reason_spike - Spike of blocks for REDLINE_FORBIDDEN_COMMAND`,
      });
      expect(await leadAudits(database.db, 'real')).toEqual([
        expect.objectContaining({
          task_id: stored.linked_task_id,
          event_type: 'LEAD_FINDING_LINKED',
          payload: expect.objectContaining({ fingerprint: finding!.fingerprint }),
        }),
      ]);
      const scanRow = await database.db
        .selectFrom('lead_scans')
        .selectAll()
        .where('scan_id', '=', report.scan_id!)
        .executeTakeFirstOrThrow();
      expect(scanRow).toMatchObject({ status: 'completed', dry_run: false, error: null });
      expect(scanRow.stats).toMatchObject({ raw_findings: 1, new_findings: 1, tasks_created: 1 });
    });
  });

  describe('when a finding code is blocked more than five times', () => {
    it('should find the blocked spike with its count, threshold and at most five samples', async () => {
      await seedSpike('spike');
      const report = await scan(database.db, 'spike', { dryRun: true });
      const [spike] = findingsOf(report, 'blocked_reason_spike');
      expect(spike).toMatchObject({
        severity: 'HIGH',
        title: 'Spike of blocks for REDLINE_FORBIDDEN_COMMAND',
      });
      const real = await scan(database.db, 'spike');
      expect(real.findings[0]?.fingerprint).toBe(spike!.fingerprint);
      const stored = await database.db
        .selectFrom('lead_findings')
        .select(['evidence'])
        .where('tenant_id', '=', 'spike')
        .executeTakeFirstOrThrow();
      expect(stored.evidence).toMatchObject({
        counts: { blocked_decisions: 6 },
        thresholds: { more_than: 5 },
        details: { finding_code: 'REDLINE_FORBIDDEN_COMMAND' },
      });
      expect((stored.evidence.sample_decision_ids as string[]).length).toBe(5);
      expect((stored.evidence.sample_task_ids as string[]).every((id) => id.startsWith('spike-'))).toBe(true);
    });
  });

  describe('when the same window is scanned twice', () => {
    it('should count the finding again and create no second task', async () => {
      await seedSpike('twice');
      const first = await scan(database.db, 'twice');
      const second = await scan(database.db, 'twice');
      expect(first.stats).toMatchObject({ new_findings: 1, tasks_created: 1 });
      expect(second).toMatchObject({ findings_count: 0, tasks_created: 0 });
      expect(second.stats).toMatchObject({
        raw_findings: 1,
        new_findings: 0,
        duplicate_findings: 1,
        tasks_created: 0,
        tasks_skipped: 0,
      });
      expect(second.findings[0]).toMatchObject({
        outcome: 'duplicate',
        task_id: first.findings[0]!.task_id,
        task_created: false,
      });
      const stored = await database.db
        .selectFrom('lead_findings')
        .selectAll()
        .where('tenant_id', '=', 'twice')
        .executeTakeFirstOrThrow();
      expect(stored.count).toBe(2);
      expect(await countRows(database.db, 'tasks', 'twice', sql`task_id like 'lead-%'`)).toBe(1);
      expect(
        (await leadAudits(database.db, 'twice')).filter((a) => a.event_type === 'LEAD_FINDING_LINKED'),
      ).toHaveLength(1);
    });
  });

  describe('when two scans of one tenant and window start together', () => {
    it('should run one and skip the other, then release the lock', async () => {
      await seedSpike('together');
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let inside!: () => void;
      const entered = new Promise<void>((resolve) => (inside = resolve));
      // The first scan waits inside its follow-up transaction, holding the lock, until the second has tried.
      const first = runLeadScan(database.db, {
        tenantId: 'together',
        window: '24h',
        rules: leadRules(),
        lock: lock.lock,
        lockPrefix: prefix,
        beforeFollowUpCommit: async () => {
          inside();
          await held;
        },
      });
      await entered;
      const second = await runLeadScan(database.db, {
        tenantId: 'together',
        window: '24h',
        rules: leadRules(),
        lock: lock.lock,
        lockPrefix: prefix,
      });
      release();
      expect(second.status).toBe('skipped');
      expect(second.stats.error).toBe(LEAD_SCAN_SKIPPED_MESSAGE);
      expect((await first).status).toBe('completed');
      // Another window kind is another lock: it runs alongside.
      const weekly = await runLeadScan(database.db, {
        tenantId: 'together',
        window: '7d',
        rules: leadRules(),
        lock: lock.lock,
        lockPrefix: prefix,
        dryRun: true,
      });
      expect(weekly.status).toBe('completed');
      // Released: the next scan of the same window runs.
      const third = await runLeadScan(database.db, {
        tenantId: 'together',
        window: '24h',
        rules: leadRules(),
        lock: lock.lock,
        lockPrefix: prefix,
      });
      expect(third.status).toBe('completed');
      const statuses = await database.db
        .selectFrom('lead_scans')
        .select(['status', 'window_kind'])
        .where('tenant_id', '=', 'together')
        .orderBy('created_at')
        .execute();
      expect(statuses.map((s) => s.status)).toEqual(['completed', 'skipped', 'completed', 'completed']);
    });
  });

  describe('when a finished queued scan is delivered again while the lock is held', () => {
    it('should leave its record alone', async () => {
      const first = await runLeadScan(database.db, {
        tenantId: 'redelivered',
        window: '24h',
        rules: leadRules(),
        lock: lock.lock,
        lockPrefix: prefix,
        dryRun: true,
      });
      const held = await lock.lock.tryAcquire(leadScanLockKey(prefix, 'redelivered', '24h'));
      try {
        const again = runLeadScan(database.db, {
          tenantId: 'redelivered',
          window: '24h',
          rules: leadRules(),
          lock: lock.lock,
          lockPrefix: prefix,
          scanId: first.scan_id!,
        });
        await expect(again).rejects.toBeInstanceOf(LeadScanAlreadyHandledError);
      } finally {
        await held?.release();
      }
      const row = await database.db
        .selectFrom('lead_scans')
        .select(['status'])
        .where('scan_id', '=', first.scan_id!)
        .executeTakeFirstOrThrow();
      expect(row.status).toBe('completed');
    });
  });

  describe('when the CLI starts while another scan holds the lock', () => {
    it(
      'should say another scan is running, exit 0 and record the skip; --force runs anyway',
      async () => {
        await seedSpike('cli-busy');
        const held = await lock.lock.tryAcquire(leadScanLockKey(prefix, 'cli-busy', '24h'));
        expect(held).toBeDefined();
        const env = { DATABASE_URL: database.url, REDIS_URL: testServers.redisUrl, QUEUE_PREFIX: prefix };
        try {
          const skipped = await runWarden(['lead', 'scan', '--window', '24h', '--tenant', 'cli-busy'], env);
          expect(skipped.code).toBe(0);
          expect(skipped.stdout).toContain(LEAD_SCAN_SKIPPED_MESSAGE);
          expect(await countRows(database.db, 'lead_scans', 'cli-busy', sql`status = 'skipped'`)).toBe(1);
          expect(await countRows(database.db, 'lead_findings', 'cli-busy')).toBe(0);

          const forced = await runWarden(
            ['lead', 'scan', '--window', '24h', '--tenant', 'cli-busy', '--force', '--json'],
            env,
          );
          expect(forced.code).toBe(0);
          expect(JSON.parse(forced.stdout).tenants['cli-busy']).toMatchObject({
            status: 'completed',
            forced: true,
            tasks_created: 1,
          });
        } finally {
          await held?.release();
        }
      },
      CLI_TIMEOUT_MS,
    );
  });

  describe('warden lead scan --help', () => {
    it(
      'should describe every option and exit 0',
      async () => {
        const result = await runWarden(['lead', 'scan', '--help']);
        expect(result.code).toBe(0);
        for (const option of ['--window', '--dry-run', '--force', '--json', '--config', '--tenant'])
          expect(result.stdout).toContain(option);
        expect(result.stderr).toBe('');
      },
      CLI_TIMEOUT_MS,
    );
  });

  describe('warden lead scan --dry-run', () => {
    it(
      'should print the window, the counts and the dry-run marker, and write nothing but the scan record',
      async () => {
        await seedSpike('cli-dry');
        const env = { DATABASE_URL: database.url, REDIS_URL: testServers.redisUrl, QUEUE_PREFIX: prefix };
        const human = await runWarden(
          ['lead', 'scan', '--window', '24h', '--dry-run', '--tenant', 'cli-dry'],
          env,
        );
        expect(human.code).toBe(0);
        expect(human.stdout).toMatch(/window\s+\d{4}-\d\d-\d\dT[\d:.]+Z → \d{4}-\d\d-\d\dT[\d:.]+Z/);
        expect(human.stdout).toMatch(/raw findings\s+1/);
        expect(human.stdout).toMatch(/new findings\s+1/);
        expect(human.stdout).toMatch(/duplicates\s+0/);
        expect(human.stdout).toMatch(/tasks created\s+0/);
        expect(human.stdout).toMatch(/tasks skipped\s+1/);
        expect(human.stdout).toContain('DRY RUN - no tasks were created');
        expect(human.stdout).toMatch(/Elapsed: \d+\.\d\d s/);

        const json = await runWarden(
          ['lead', 'scan', '--window', '24h', '--dry-run', '--json', '--tenant', 'cli-dry'],
          env,
        );
        expect(json.code).toBe(0);
        const output = JSON.parse(json.stdout);
        // One object, the tenant's report under its id, totals beside.
        expect(output).toMatchObject({
          window_kind: '24h',
          dry_run: true,
          failures: [],
          findings_count: 1,
          tasks_created: 0,
        });
        expect(Object.keys(output.tenants)).toEqual(['cli-dry']);
        const report = output.tenants['cli-dry'];
        expect(Object.keys(report)).toEqual(
          expect.arrayContaining([
            'timestamp',
            'window_kind',
            'window',
            'findings_count',
            'tasks_created',
            'dry_run',
            'stats',
          ]),
        );
        expect(report).toMatchObject({
          window_kind: '24h',
          findings_count: 1,
          tasks_created: 0,
          dry_run: true,
          window: { start: expect.any(String), end: expect.any(String) },
        });
        expect(Object.keys(report.stats)).toEqual(
          expect.arrayContaining([
            'started_at',
            'completed_at',
            'raw_findings',
            'new_findings',
            'duplicate_findings',
            'tasks_created',
            'tasks_skipped',
            'error',
          ]),
        );
        expect(await countRows(database.db, 'lead_findings', 'cli-dry')).toBe(0);
        expect(await leadAudits(database.db, 'cli-dry')).toEqual([]);
      },
      CLI_TIMEOUT_MS,
    );
  });

  describe('when the window is not a window', () => {
    it.each([['3w'], ['0h'], ['91d'], ['24'], ['1.5h'], ['']])(
      'should refuse --window "%s" with a clear message and exit 2',
      async (window) => {
        const result = await runWarden(['lead', 'scan', '--window', window], { DATABASE_URL: database.url });
        expect(result.code).toBe(2);
        expect(result.stderr).toContain('invalid --window: must be "Nh" or "Nd" between 1h and 90d');
        expect(result.stderr).not.toMatch(/\n\s+at /);
        expect(result.stdout).toBe('');
      },
      CLI_TIMEOUT_MS,
    );

    it('should accept the edges 1h and 90d and refuse anything else before touching the database', async () => {
      for (const window of ['1h', '90d', '2160h', '7D ']) {
        expect((await scan(database.db, 'edges', { window, dryRun: true })).status).toBe('completed');
      }
      await expect(scan(database.db, 'edges', { window: '91d' })).rejects.toThrow(/invalid window/);
      expect(await countRows(database.db, 'lead_scans', 'edges')).toBe(4);
    });
  });

  describe('when the window holds no decisions', () => {
    it('should complete with nothing found, no warning and no task', async () => {
      const report = await scan(database.db, 'empty');
      expect(report).toMatchObject({
        status: 'completed',
        findings_count: 0,
        tasks_created: 0,
        findings: [],
      });
      expect(report.stats).toMatchObject({
        decisions_scanned: 0,
        raw_findings: 0,
        new_findings: 0,
        duplicate_findings: 0,
        tasks_skipped: 0,
        warnings: [],
        error: null,
      });
      expect(await countRows(database.db, 'lead_scans', 'empty', sql`status = 'completed'`)).toBe(1);
    });
  });

  describe('when the database is unreachable', () => {
    it(
      'should print one line naming the server and exit 1, no stack trace',
      async () => {
        const result = await runWarden(['lead', 'scan', '--window', '24h', '--dry-run'], {
          DATABASE_URL: 'postgres://postgres@127.0.0.1:1/x',
        });
        expect(result.code).toBe(1);
        expect(result.stderr).toMatch(
          /^error: cannot connect to Postgres at postgres:\/\/127\.0\.0\.1:1\/x: .*ECONNREFUSED/,
        );
        expect(result.stderr.trim().split('\n')).toHaveLength(1);
        expect(result.stderr).not.toMatch(/\n\s+at /);
      },
      CLI_TIMEOUT_MS,
    );
  });
});
