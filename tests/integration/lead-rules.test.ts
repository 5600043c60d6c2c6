/**
 * Each of the six lead rules, positive and negative at its threshold's edge, over decisions the real supervisor
 * made (DecisionProcessor.processEvents). Every case has a tenant of its own in one database, so the scans of
 * one case never see another's decisions.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { unblockTask } from '@warden/db';
import { LeadRulesFileSchema, defaultLeadRules, parsePolicyYaml } from '@warden/domain';
import { createTestDatabase, type TestDatabase } from '@warden/testing';
import type { DecisionProcessor } from '../../services/supervisor-worker/src/index.js';
import {
  LEAD_RULES_FILE,
  decide,
  findingsOf,
  leadRules,
  scan,
  supervisorFor,
  taskEvent,
  taskEvents,
  payloads,
} from '../support/lead.js';

const HOUR = 3_600_000;

describe('the six lead rules over supervisor decisions', () => {
  let database: TestDatabase;
  let supervisor: DecisionProcessor;
  let monitor: DecisionProcessor;

  beforeAll(async () => {
    database = await createTestDatabase();
    supervisor = supervisorFor(database.db);
    monitor = supervisorFor(database.db, 'monitor');
  });
  afterAll(async () => {
    await database.drop();
  });

  const unblock = (tenant: string, task: string) =>
    database.db.transaction().execute((trx) =>
      unblockTask(trx, {
        tenantId: tenant,
        taskId: task,
        unblockedBy: 'test:operator',
        reason: 'reviewed',
      }),
    );

  it('should ship a rules file that writes out the defaults', async () => {
    expect(
      parsePolicyYaml(await readFile(LEAD_RULES_FILE, 'utf8'), LeadRulesFileSchema, LEAD_RULES_FILE),
    ).toEqual(defaultLeadRules());
  });

  describe('blocked_reason_spike (a code on more than 5 BLOCK decisions)', () => {
    it('should fire for the code blocked 6 times and not for the one blocked 5 times', async () => {
      const six = Array.from({ length: 6 }, (_, i) =>
        taskEvents('spike', `cmd-${i}`, ['forbiddenCommand']),
      ).flat();
      const five = Array.from({ length: 5 }, (_, i) =>
        taskEvents('spike', `path-${i}`, ['forbiddenPath']),
      ).flat();
      expect(new Set(await decide(supervisor, [...six, ...five]))).toEqual(new Set(['BLOCK']));

      const findings = findingsOf(await scan(database.db, 'spike', { dryRun: true }), 'blocked_reason_spike');
      expect(findings.map((f) => f.title)).toEqual(['Spike of blocks for REDLINE_FORBIDDEN_COMMAND']);
      expect(findings[0]!.severity).toBe('HIGH');
    });

    it('should count a decision once however often it names the code, and read the threshold from the rules', async () => {
      // `rm -rf /` by an agent without file_write: REDLINE_FORBIDDEN_COMMAND and REDLINE_UNDECLARED_FILE_WRITE, once each.
      const events = Array.from({ length: 3 }, (_, i) =>
        taskEvent('spike-rules', `rm-${i}`, 'TASK_CREATED', {
          agent_spec: { name: 'a', capabilities: [] },
          command_spec: { name: 'c', command: 'rm', args: ['-rf', '/'] },
        }),
      );
      await decide(supervisor, events);
      const at2 = findingsOf(
        await scan(database.db, 'spike-rules', {
          dryRun: true,
          rules: leadRules({ rules: { blocked_reason_spike: { threshold: 2 } } }),
        }),
        'blocked_reason_spike',
      );
      expect(at2.map((f) => f.title).sort()).toEqual([
        'Spike of blocks for REDLINE_FORBIDDEN_COMMAND',
        'Spike of blocks for REDLINE_UNDECLARED_FILE_WRITE',
      ]);
      const at3 = findingsOf(
        await scan(database.db, 'spike-rules', {
          dryRun: true,
          rules: leadRules({ rules: { blocked_reason_spike: { threshold: 3 } } }),
        }),
        'blocked_reason_spike',
      );
      expect(at3).toEqual([]);
    });
  });

  describe('pause_block_churn (paused ≥ 2 times, last decision BLOCK)', () => {
    it('should fire for two pauses then a block, and not for one pause, nor when a later decision follows the block', async () => {
      const events = [
        ...taskEvents('churn', 'once', ['riskyStep', 'fatalFailure']),
        ...taskEvents('churn', 'twice', ['riskyStep', 'riskyStep', 'fatalFailure']),
        ...taskEvents('churn', 'recovered', ['riskyStep', 'riskyStep', 'fatalFailure']),
      ];
      expect(await decide(supervisor, events)).toEqual([
        'PAUSE',
        'BLOCK',
        'PAUSE',
        'PAUSE',
        'BLOCK',
        'PAUSE',
        'PAUSE',
        'BLOCK',
      ]);
      // Only a person takes a task out of `blocked`. Its pause gates are still open, so it waits at them again
      // and its next decision, which follows the block, is a PAUSE.
      await unblock('churn', 'recovered');
      expect(await decide(supervisor, taskEvents('churn', 'recovered', ['cleanStep']))).toEqual(['PAUSE']);
      const report = await scan(database.db, 'churn');
      const findings = findingsOf(report, 'pause_block_churn');
      expect(findings.map((f) => f.title)).toEqual(['Task twice was paused repeatedly, then blocked']);
      expect(findings[0]!.severity).toBe('MEDIUM');
      const stored = await database.db
        .selectFrom('lead_findings')
        .selectAll()
        .where('tenant_id', '=', 'churn')
        .where('code', '=', 'pause_block_churn')
        .executeTakeFirstOrThrow();
      expect(stored.dimensions).toEqual({ task_id: 'twice' });
      expect(stored.evidence).toMatchObject({
        counts: { pauses: 2 },
        thresholds: { min_pauses: 2 },
        sample_task_ids: ['twice'],
      });
      expect(stored.evidence.sample_decision_ids).toHaveLength(3);
    });
  });

  describe('retry_recommended_but_fails (a RETRY later followed by a BLOCK)', () => {
    it('should fire for retry-then-block keyed by the first retry, and not for block-then-retry', async () => {
      const events = [
        ...taskEvents('retry', 'then-blocked', ['retryableFailure', 'retryableFailure', 'fatalFailure']),
        ...taskEvents('retry', 'blocked-first', ['fatalFailure']),
        ...taskEvents('retry', 'retried-only', ['retryableFailure']),
      ];
      expect(await decide(supervisor, events)).toEqual(['RETRY', 'RETRY', 'BLOCK', 'BLOCK', 'RETRY']);
      await unblock('retry', 'blocked-first');
      expect(await decide(supervisor, taskEvents('retry', 'blocked-first', ['retryableFailure']))).toEqual([
        'RETRY',
      ]);
      await scan(database.db, 'retry');
      const rows = await database.db
        .selectFrom('lead_findings')
        .selectAll()
        .where('tenant_id', '=', 'retry')
        .where('code', '=', 'retry_recommended_but_fails')
        .execute();
      expect(rows).toHaveLength(1);
      const firstRetry = await database.db
        .selectFrom('task_audits')
        .select('decision_id')
        .where('tenant_id', '=', 'retry')
        .where('task_id', '=', 'then-blocked')
        .where('event_type', '=', 'SUPERVISOR_RETRY_RECOMMENDED')
        .orderBy('audit_id')
        .executeTakeFirstOrThrow();
      expect(rows[0]).toMatchObject({
        severity: 'HIGH',
        dimensions: { task_id: 'then-blocked', retry_decision_id: firstRetry.decision_id },
      });
      expect(rows[0]!.evidence).toMatchObject({
        counts: { retries: 2, blocks: 1 },
        details: { retry_decision_id: firstRetry.decision_id },
      });
    });
  });

  describe('decision_lag_anomaly (lag p95 above the threshold)', () => {
    /** Lags of the tenant's decisions in ms, ascending (what the rule measures: processed_at − source_event_ts). */
    async function lags(tenant: string): Promise<number[]> {
      const result = await sql<{ lag: number }>`
        select (extract(epoch from processed_at - source_event_ts) * 1000)::float8 as lag from task_audits
         where tenant_id = ${tenant} and decision_id is not null order by 1`.execute(database.db);
      return result.rows.map((r) => r.lag);
    }
    const rulesAt = (thresholdMs: number) =>
      leadRules({ rules: { decision_lag_anomaly: { threshold_ms: thresholdMs } } });

    it('should fire when the p95 decision is over the threshold by a millisecond, and not when it is at it', async () => {
      // 18 events decided at once and 2 whose events happened a minute earlier: the p95 of 20 (rank 19) is the faster slow one.
      const slow = new Date(Date.now() - 60_000);
      await decide(supervisor, [
        ...Array.from({ length: 18 }, (_, i) => taskEvent('lag', `fast-${i}`, 'TASK_STEP_COMPLETED', {})),
        ...[0, 1].map((i) => taskEvent('lag', `slow-${i}`, 'TASK_STEP_COMPLETED', {}, slow)),
      ]);
      const measured = await lags('lag');
      const p95 = measured[18]!;
      expect(p95).toBeGreaterThan(50_000);
      const over = findingsOf(
        await scan(database.db, 'lag', { dryRun: true, rules: rulesAt(Math.floor(p95) - 1) }),
        'decision_lag_anomaly',
      );
      expect(over).toHaveLength(1);
      expect(over[0]!.severity).toBe('MEDIUM');
      const at = findingsOf(
        await scan(database.db, 'lag', { dryRun: true, rules: rulesAt(Math.ceil(p95)) }),
        'decision_lag_anomaly',
      );
      expect(at).toEqual([]);
    });

    it('should not fire when only one decision in twenty is slow (the p95 is then a fast one)', async () => {
      const slow = new Date(Date.now() - 60_000);
      await decide(supervisor, [
        ...Array.from({ length: 19 }, (_, i) => taskEvent('lag-one', `fast-${i}`, 'TASK_STEP_COMPLETED', {})),
        taskEvent('lag-one', 'slow', 'TASK_STEP_COMPLETED', {}, slow),
      ]);
      const report = await scan(database.db, 'lag-one', { dryRun: true, rules: rulesAt(30_000) });
      expect(findingsOf(report, 'decision_lag_anomaly')).toEqual([]);
      // One more slow decision tips the p95 over.
      await decide(supervisor, [taskEvent('lag-one', 'slow-2', 'TASK_STEP_COMPLETED', {}, slow)]);
      const tipped = await scan(database.db, 'lag-one', { rules: rulesAt(30_000) });
      expect(findingsOf(tipped, 'decision_lag_anomaly')).toHaveLength(1);
      const stored = await database.db
        .selectFrom('lead_findings')
        .selectAll()
        .where('tenant_id', '=', 'lag-one')
        .executeTakeFirstOrThrow();
      expect(stored.evidence).toMatchObject({
        counts: { decisions: 21, over_threshold: 2 },
        thresholds: { percentile: 0.95, threshold_ms: 30_000 },
      });
      expect((stored.evidence.details as { percentile_ms: number }).percentile_ms).toBeGreaterThan(30_000);
      // The largest lag to the microsecond, as the decisions themselves give it (the window's count reads it).
      expect((stored.evidence.details as { max_ms: number }).max_ms).toBe((await lags('lag-one')).at(-1));
      // The slowest first.
      expect((stored.evidence.sample_task_ids as string[]).slice(0, 2).sort()).toEqual(['slow', 'slow-2']);
    });
  });

  describe('redline_ratio_increase (the REDLINE share rose by more than 0.10)', () => {
    /** `redline` REDLINE findings and `others` LOW findings, whose events happened at `at`. */
    function mix(tenant: string, label: string, redline: number, others: number, at: Date) {
      return [
        ...Array.from({ length: redline }, (_, i) =>
          taskEvent(tenant, `${label}-red-${i}`, 'TASK_CREATED', { ...payloads.forbiddenCommand }, at),
        ),
        ...Array.from({ length: others }, (_, i) =>
          taskEvent(tenant, `${label}-low-${i}`, 'TASK_STEP_COMPLETED', { ...payloads.stepWithWarning }, at),
        ),
      ];
    }
    const yesterday = () => new Date(Date.now() - 30 * HOUR);

    it('should not fire for a rise of exactly 0.10 over the previous window, and fire just above it', async () => {
      await decide(supervisor, [
        ...mix('ratio-at', 'prev', 1, 9, yesterday()),
        ...mix('ratio-at', 'now', 2, 8, new Date()),
      ]);
      expect(
        findingsOf(await scan(database.db, 'ratio-at', { dryRun: true }), 'redline_ratio_increase'),
      ).toEqual([]);

      await decide(supervisor, [
        ...mix('ratio-over', 'prev', 1, 9, yesterday()),
        ...mix('ratio-over', 'now', 2, 7, new Date()),
      ]);
      const [finding] = findingsOf(await scan(database.db, 'ratio-over'), 'redline_ratio_increase');
      expect(finding).toMatchObject({ severity: 'HIGH' });
      const stored = await database.db
        .selectFrom('lead_findings')
        .selectAll()
        .where('tenant_id', '=', 'ratio-over')
        .where('code', '=', 'redline_ratio_increase')
        .executeTakeFirstOrThrow();
      expect(stored.evidence).toMatchObject({
        counts: { findings: 9, redline_findings: 2, previous_findings: 10, previous_redline_findings: 1 },
        details: { reference: 'previous_window', reference_share: 0.1 },
      });
    });

    it('should compare against the 0.05 baseline when the previous window holds no findings', async () => {
      await decide(supervisor, mix('baseline-at', 'now', 3, 17, new Date()));
      expect(
        findingsOf(await scan(database.db, 'baseline-at', { dryRun: true }), 'redline_ratio_increase'),
      ).toEqual([]);

      await decide(supervisor, mix('baseline-over', 'now', 4, 21, new Date()));
      const findings = findingsOf(
        await scan(database.db, 'baseline-over', { dryRun: true }),
        'redline_ratio_increase',
      );
      expect(findings).toHaveLength(1);
    });

    it('should not fire when the share fell', async () => {
      await decide(supervisor, [
        ...mix('ratio-down', 'prev', 5, 5, yesterday()),
        ...mix('ratio-down', 'now', 1, 9, new Date()),
      ]);
      expect(
        findingsOf(await scan(database.db, 'ratio-down', { dryRun: true }), 'redline_ratio_increase'),
      ).toEqual([]);
    });
  });

  describe('high_risk_allow (an ALLOW carrying a HIGH or CRITICAL finding)', () => {
    it('should fire for a monitor-mode ALLOW of a redline, keyed by the decision, and not for ALLOWs with lesser findings', async () => {
      await decide(monitor, [
        ...taskEvents('risky-allow', 'redline', ['forbiddenCommand']),
        // Two MEDIUM risks: PAUSE under enforcement, ALLOW here.
        ...taskEvents('risky-allow', 'medium', ['riskyStep']),
      ]);
      await decide(supervisor, taskEvents('risky-allow', 'low', ['stepWithWarning']));
      const report = await scan(database.db, 'risky-allow');
      const findings = findingsOf(report, 'high_risk_allow');
      expect(findings).toHaveLength(1);
      expect(findings[0]).toMatchObject({
        severity: 'CRITICAL',
        title: 'ALLOW with a HIGH finding on task redline',
      });
      const allow = await database.db
        .selectFrom('task_audits')
        .select(['decision_id', 'payload'])
        .where('tenant_id', '=', 'risky-allow')
        .where('task_id', '=', 'redline')
        .executeTakeFirstOrThrow();
      expect(allow.payload).toMatchObject({ decision_type: 'ALLOW', would_have: 'BLOCK' });
      const stored = await database.db
        .selectFrom('lead_findings')
        .selectAll()
        .where('tenant_id', '=', 'risky-allow')
        .where('code', '=', 'high_risk_allow')
        .executeTakeFirstOrThrow();
      expect(stored.dimensions).toEqual({ decision_id: allow.decision_id });
      expect(stored.evidence).toMatchObject({
        sample_decision_ids: [allow.decision_id],
        details: { codes: ['REDLINE_FORBIDDEN_COMMAND'], severity: 'HIGH', would_have: 'BLOCK' },
      });
      // CRITICAL → priority 1, created ready for work.
      const task = await database.db
        .selectFrom('tasks')
        .selectAll()
        .where('tenant_id', '=', 'risky-allow')
        .where('task_id', '=', stored.linked_task_id!)
        .executeTakeFirstOrThrow();
      expect(task.status).toBe('ready');
      expect(task.metadata).toMatchObject({ priority: 1 });
    });
  });

  describe('the self-check', () => {
    it('should warn LEAD_SELF_CHECK_FAILED when the window held high-risk data and no rule fired', async () => {
      await decide(monitor, taskEvents('blind', 'redline', ['forbiddenCommand']));
      const rules = leadRules({
        rules: { high_risk_allow: { enabled: false }, redline_ratio_increase: { enabled: false } },
      });
      const report = await scan(database.db, 'blind', { rules });
      expect(report.stats.raw_findings).toBe(0);
      expect(report.stats.warnings).toEqual([
        expect.objectContaining({
          code: 'LEAD_SELF_CHECK_FAILED',
          message: expect.stringContaining('1 ALLOW decisions carried a HIGH or CRITICAL finding'),
        }),
      ]);
      const row = await database.db
        .selectFrom('lead_scans')
        .select(['warnings', 'status'])
        .where('scan_id', '=', report.scan_id!)
        .executeTakeFirstOrThrow();
      expect(row).toMatchObject({
        status: 'completed',
        warnings: [expect.objectContaining({ code: 'LEAD_SELF_CHECK_FAILED' })],
      });
    });

    it('should warn when findings carry no code or kind, which no rule can see', async () => {
      await decide(supervisor, taskEvents('codeless', 'task', ['forbiddenCommand']));
      // The predecessor's bug, reproduced by hand: a decision whose findings lost their code and kind.
      await sql`update task_audits set payload = jsonb_set(payload, '{findings}', '[{"severity":"HIGH","description":"?"}]') where tenant_id = 'codeless'`.execute(
        database.db,
      );
      const report = await scan(database.db, 'codeless', { dryRun: true });
      expect(report.stats.warnings).toEqual([
        expect.objectContaining({
          code: 'LEAD_SELF_CHECK_FAILED',
          message: expect.stringContaining('1 findings carry no code or kind'),
        }),
      ]);
    });

    it('should stay quiet when the rules found what the data holds', async () => {
      await decide(monitor, taskEvents('seen', 'redline', ['forbiddenCommand']));
      const report = await scan(database.db, 'seen', { dryRun: true });
      expect(findingsOf(report, 'high_risk_allow')).toHaveLength(1);
      expect(report.stats.warnings).toEqual([]);
    });
  });
});
