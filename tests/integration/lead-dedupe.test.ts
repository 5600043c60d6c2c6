/**
 * What a finding becomes across scans: the same fingerprint run after run and day after day, one follow-up task
 * ever, a resolved finding reopening when it comes back, a silence that holds until it ends, and a failure inside
 * the create-and-link transaction that leaves neither task nor link behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { verifyAuditChain } from '@warden/db';
import { LeadScanFailedError, resolveLeadFinding, silenceLeadFinding } from '@warden/lead-engine';
import { leadFingerprint } from '@warden/domain';
import { createTestDatabase, type TestDatabase } from '@warden/testing';
import type { DecisionProcessor } from '../../services/supervisor-worker/src/index.js';
import {
  countRows,
  decide,
  findingsOf,
  leadAudits,
  scan,
  supervisorFor,
  taskEvents,
} from '../support/lead.js';

const HOUR = 3_600_000;

describe('lead findings across scans', () => {
  let database: TestDatabase;
  let supervisor: DecisionProcessor;

  /** One pause-then-block churn (MEDIUM) on task `task`; nothing else fires. */
  async function seedChurn(tenant: string, task = 'churned'): Promise<void> {
    await decide(supervisor, taskEvents(tenant, task, ['riskyStep', 'riskyStep', 'fatalFailure']));
  }
  const findingRow = (tenant: string) =>
    database.db
      .selectFrom('lead_findings')
      .selectAll()
      .where('tenant_id', '=', tenant)
      .executeTakeFirstOrThrow();

  beforeAll(async () => {
    database = await createTestDatabase();
    supervisor = supervisorFor(database.db);
  });
  afterAll(async () => {
    await database.drop();
  });

  describe('the fingerprint', () => {
    it('should be the same across runs and across windows moved in time, and differ by window kind', async () => {
      await seedChurn('stable');
      const now = Date.now();
      const first = await scan(database.db, 'stable', { now: () => new Date(now) });
      const later = await scan(database.db, 'stable', { now: () => new Date(now + 2 * HOUR) });
      const expected = leadFingerprint('pause_block_churn', '24h', { task_id: 'churned' });
      expect(findingsOf(first, 'pause_block_churn').map((f) => f.fingerprint)).toEqual([expected]);
      expect(findingsOf(later, 'pause_block_churn').map((f) => f.fingerprint)).toEqual([expected]);
      expect(later.window.start).not.toBe(first.window.start);
      const weekly = await scan(database.db, 'stable', { window: '7d' });
      expect(findingsOf(weekly, 'pause_block_churn').map((f) => f.fingerprint)).toEqual([
        leadFingerprint('pause_block_churn', '7d', { task_id: 'churned' }),
      ]);

      const row = await database.db
        .selectFrom('lead_findings')
        .selectAll()
        .where('tenant_id', '=', 'stable')
        .where('fingerprint', '=', expected)
        .executeTakeFirstOrThrow();
      expect(row.count).toBe(2);
      expect(row.first_seen_at.getTime()).toBe(now);
      expect(row.last_seen_at.getTime()).toBe(now + 2 * HOUR);
      // One follow-up per fingerprint: the 24h finding's and the 7d finding's.
      expect(await countRows(database.db, 'tasks', 'stable', sql`task_id like 'lead-%'`)).toBe(2);
    });
  });

  describe('the follow-up task', () => {
    it('should be a draft of priority 3 for a MEDIUM finding, titled and carrying the finding, linked once', async () => {
      await seedChurn('follow-up');
      const report = await scan(database.db, 'follow-up');
      const row = await findingRow('follow-up');
      const task = await database.db
        .selectFrom('tasks')
        .selectAll()
        .where('tenant_id', '=', 'follow-up')
        .where('task_id', '=', row.linked_task_id!)
        .executeTakeFirstOrThrow();
      expect(task.status).toBe('draft');
      expect(task.metadata).toMatchObject({
        kind: 'lead_follow_up',
        title: '[LEAD][24h] pause_block_churn - Task churned was paused repeatedly, then blocked',
        priority: 3,
        scan_id: report.scan_id,
        finding: {
          fingerprint: row.fingerprint,
          code: 'pause_block_churn',
          severity: 'MEDIUM',
          window_kind: '24h',
          dimensions: { task_id: 'churned' },
          evidence: { counts: { pauses: 2 } },
        },
      });
      // The analysed task itself is untouched by the miner: it stays blocked, with the supervisor's metadata only.
      const analysed = await database.db
        .selectFrom('tasks')
        .select(['status', 'metadata'])
        .where('tenant_id', '=', 'follow-up')
        .where('task_id', '=', 'churned')
        .executeTakeFirstOrThrow();
      expect(analysed.status).toBe('blocked');
      expect(analysed.metadata).not.toHaveProperty('kind');
      // Lead audit rows join the tenant's hash chain like any other.
      expect((await verifyAuditChain(database.db, 'follow-up')).broken).toBeUndefined();
    });

    it('should be created once when two forced scans race', async () => {
      await seedChurn('race');
      const reports = await Promise.all([scan(database.db, 'race'), scan(database.db, 'race')]);
      expect(reports.map((r) => r.status)).toEqual(['completed', 'completed']);
      expect(reports.reduce((sum, r) => sum + r.tasks_created, 0)).toBe(1);
      expect(reports.map((r) => r.stats.new_findings).sort()).toEqual([0, 1]);
      expect(await countRows(database.db, 'tasks', 'race', sql`task_id like 'lead-%'`)).toBe(1);
      expect((await findingRow('race')).count).toBe(2);
      expect(
        (await leadAudits(database.db, 'race')).filter((a) => a.event_type === 'LEAD_FINDING_LINKED'),
      ).toHaveLength(1);
    });
  });

  describe('when a resolved finding is seen again', () => {
    it('should reopen it, audit the regression on its task, keep first_seen_at and the link, and open no second task', async () => {
      await seedChurn('regress');
      await scan(database.db, 'regress');
      const before = await findingRow('regress');
      const resolved = await database.db.transaction().execute((trx) =>
        resolveLeadFinding(trx, {
          tenantId: 'regress',
          fingerprint: before.fingerprint,
          by: 'test',
          note: 'fixed the agent',
          now: new Date(),
        }),
      );
      expect(resolved).toMatchObject({
        status: 'changed',
        finding: { status: 'resolved', resolved_by: 'test' },
      });

      const report = await scan(database.db, 'regress');
      expect(report.findings[0]).toMatchObject({
        outcome: 'reopened',
        task_id: before.linked_task_id,
        task_created: false,
      });
      expect(report.stats).toMatchObject({
        reopened_findings: 1,
        duplicate_findings: 1,
        new_findings: 0,
        tasks_created: 0,
      });
      const after = await findingRow('regress');
      expect(after).toMatchObject({
        status: 'open',
        resolved_at: null,
        resolved_by: null,
        linked_task_id: before.linked_task_id,
        count: 2,
      });
      expect(after.first_seen_at).toEqual(before.first_seen_at);
      expect((await leadAudits(database.db, 'regress')).map((a) => [a.event_type, a.task_id])).toEqual([
        ['LEAD_FINDING_LINKED', before.linked_task_id],
        ['LEAD_FINDING_RESOLVED', before.linked_task_id],
        ['LEAD_FINDING_REOPENED', before.linked_task_id],
      ]);
      expect(await countRows(database.db, 'tasks', 'regress', sql`task_id like 'lead-%'`)).toBe(1);
    });
  });

  describe('when the create-and-link transaction fails', () => {
    it('should leave neither the task nor the link nor its audit row, and the next scan should create them', async () => {
      await seedChurn('crash');
      let seenInside: unknown;
      const failing = scan(database.db, 'crash', {
        beforeFollowUpCommit: async (trx, fingerprint) => {
          // The task and the link exist inside the transaction: the failure comes after both, before commit.
          seenInside = await trx
            .selectFrom('tasks')
            .select('task_id')
            .where('tenant_id', '=', 'crash')
            .where('task_id', '=', `lead-${fingerprint}`)
            .executeTakeFirst();
          throw new Error('injected: the process died here');
        },
      });
      const error = await failing.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LeadScanFailedError);
      expect((error as LeadScanFailedError).report).toMatchObject({
        status: 'failed',
        tasks_created: 0,
        stats: { new_findings: 1, tasks_skipped: 1 },
      });
      expect((error as Error).message).toContain('injected: the process died here');
      expect(seenInside).toBeDefined();

      const row = await findingRow('crash');
      expect(row.linked_task_id).toBeNull();
      expect(await countRows(database.db, 'tasks', 'crash', sql`task_id like 'lead-%'`)).toBe(0);
      expect(await leadAudits(database.db, 'crash')).toEqual([]);
      const failedScan = await database.db
        .selectFrom('lead_scans')
        .selectAll()
        .where('tenant_id', '=', 'crash')
        .executeTakeFirstOrThrow();
      expect(failedScan).toMatchObject({ status: 'failed', error: expect.stringContaining('injected') });

      const retried = await scan(database.db, 'crash');
      expect(retried).toMatchObject({ status: 'completed', tasks_created: 1 });
      expect(retried.findings[0]).toMatchObject({ outcome: 'duplicate', task_created: true });
      expect((await findingRow('crash')).linked_task_id).toBe(`lead-${row.fingerprint}`);
      expect((await leadAudits(database.db, 'crash')).map((a) => a.event_type)).toEqual([
        'LEAD_FINDING_LINKED',
      ]);
    });
  });

  describe('when a finding is silenced', () => {
    it('should stay silent — counted, no task — until the silence ends, then open as usual', async () => {
      await seedChurn('quiet');
      // Store the finding without a task (its follow-up fails), then silence it for an hour.
      await scan(database.db, 'quiet', {
        beforeFollowUpCommit: async () => {
          throw new Error('no task yet');
        },
      }).catch(() => {});
      const row = await findingRow('quiet');
      const now = Date.now();
      await database.db.transaction().execute((trx) =>
        silenceLeadFinding(trx, {
          tenantId: 'quiet',
          fingerprint: row.fingerprint,
          by: 'test',
          until: new Date(now + HOUR),
          now: new Date(now),
        }),
      );

      const silent = await scan(database.db, 'quiet', { now: () => new Date(now + 10 * 60_000) });
      expect(silent.findings[0]).toMatchObject({ outcome: 'silenced', task_id: null, task_created: false });
      expect(silent.stats).toMatchObject({ silenced_findings: 1, tasks_created: 0, tasks_skipped: 0 });
      expect(await findingRow('quiet')).toMatchObject({ status: 'silenced', linked_task_id: null, count: 2 });
      expect(await countRows(database.db, 'tasks', 'quiet', sql`task_id like 'lead-%'`)).toBe(0);

      const afterwards = await scan(database.db, 'quiet', { now: () => new Date(now + 2 * HOUR) });
      expect(afterwards.findings[0]).toMatchObject({ outcome: 'duplicate', task_created: true });
      expect(await findingRow('quiet')).toMatchObject({
        status: 'open',
        silenced_until: null,
        linked_task_id: `lead-${row.fingerprint}`,
      });
      expect((await leadAudits(database.db, 'quiet')).map((a) => a.event_type)).toEqual([
        'LEAD_FINDING_SILENCED',
        'LEAD_FINDING_SILENCE_EXPIRED',
        'LEAD_FINDING_LINKED',
      ]);
    });
  });
});
