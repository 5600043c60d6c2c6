import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveDecidedEvents, listArchivePartitions, rotateArchivePartitions, utcDay } from '@warden/db';
import { createTestDatabase, type TestDatabase } from '@warden/testing';
import { ArchiveMaintenance } from '@warden/supervisor-worker';
import { createTestProcessor, silentLogger, taskEvent } from '../support/supervisor.js';

const DAY = 86_400_000;
const TENANT = 'archive-co';

describe('the event archive', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  const archived = (taskId: string) =>
    database.db
      .selectFrom('event_archive')
      .selectAll()
      .where('tenant_id', '=', TENANT)
      .where('task_id', '=', taskId)
      .orderBy('inbox_id')
      .execute();

  describe('when events are decided', () => {
    it('should keep each event as received with the task context its policy saw, in the decision transaction', async () => {
      const processor = await createTestProcessor(database.db);
      const created = taskEvent(TENANT, 'a-1', {
        task_id: 'task-a',
        event_type: 'TASK_CREATED',
        payload: { agent_spec: { name: 'worker', capabilities: [] }, max_retries: 2 },
      });
      const failed = taskEvent(TENANT, 'a-2', {
        task_id: 'task-a',
        event_type: 'TASK_FAILED',
        payload: { error_type: 'network_timeout', retry_count: 0 },
        trace_id: 'trace-a',
      });
      // One group: the second event's context is the first one's outcome, as the policy saw it.
      await processor.processEvents([created, failed]);
      const rows = await archived('task-a');
      expect(rows.map((r) => [r.event_id, r.event_type, r.decision_type])).toEqual([
        ['a-1', 'TASK_CREATED', 'ALLOW'],
        ['a-2', 'TASK_FAILED', 'RETRY'],
      ]);
      expect(rows[0]!.task_context).toEqual({ status: null, metadata: {}, retry_count: 0 });
      expect(rows[1]!.task_context.status).toBe('verifying');
      expect(rows[1]!.task_context.metadata).toMatchObject({ max_retries: 2 });
      expect(rows[1]!.payload).toEqual(failed.payload);
      expect(rows[1]!.trace_id).toBe('trace-a');
      expect(rows[1]!.finding_codes).toEqual(['FAILURE_NETWORK_TIMEOUT']);
      const decision = await database.db
        .selectFrom('decisions')
        .select(['decision_id', 'policy_version'])
        .where('event_id', '=', 'a-2')
        .executeTakeFirstOrThrow();
      expect([rows[1]!.decision_id, rows[1]!.policy_version]).toEqual([
        decision.decision_id,
        decision.policy_version,
      ]);
      expect(Number(rows[0]!.inbox_id)).toBeLessThan(Number(rows[1]!.inbox_id));
    });

    it('should record the tasks holding resources when the event declares some', async () => {
      const processor = await createTestProcessor(database.db);
      await processor.processEvents([
        taskEvent(TENANT, 'h-1', {
          task_id: 'holder',
          event_type: 'TASK_CREATED',
          payload: { agent_spec: { name: 'w', capabilities: [] }, exclusive_resources: ['db-1'] },
        }),
      ]);
      await processor.processEvents([
        taskEvent(TENANT, 'w-1', {
          task_id: 'waiter',
          event_type: 'TASK_CREATED',
          payload: { agent_spec: { name: 'w', capabilities: [] }, exclusive_resources: ['db-1'] },
        }),
      ]);
      const [row] = await archived('waiter');
      expect(row!.decision_type).toBe('BLOCK');
      expect(row!.running_tasks).toEqual([{ task_id: 'holder', resources: ['db-1'] }]);
    });

    it('should archive nothing when the decision transaction rolls back', async () => {
      const processor = await createTestProcessor(database.db, {
        maxAttempts: 1,
        beforeCommit: async () => {
          throw new Error('injected');
        },
      });
      await processor.processEvents([taskEvent(TENANT, 'r-1', { task_id: 'rolled-back' })]);
      expect(await archived('rolled-back')).toEqual([]);
    });

    it('should keep the archive when completed inbox rows are cleaned up', async () => {
      await database.db.deleteFrom('supervisor_inbox').where('tenant_id', '=', TENANT).execute();
      expect((await archived('task-a')).length).toBe(2);
    });
  });

  describe('partition rotation', () => {
    const record = (eventId: string, decidedAt: Date) => ({
      tenant_id: 'rotation-co',
      event_id: eventId,
      task_id: 't',
      event_type: 'TASK_STATE_CHANGED',
      inbox_id: '1',
      source: 'queue',
      trace_id: null,
      event_ts: decidedAt,
      received_at: decidedAt,
      payload: {},
      task_context: { status: null, metadata: {}, retry_count: 0 },
      running_tasks: [],
      decision_id: `d-${eventId}`,
      decision_type: 'ALLOW',
      policy: 'task_state_changed',
      policy_version: '1+1',
      finding_codes: [],
      would_have: null,
      decided_at: decidedAt,
    });
    const count = async () =>
      Number(
        (
          await database.db
            .selectFrom('event_archive')
            .select((eb) => eb.fn.countAll<string>().as('n'))
            .where('tenant_id', '=', 'rotation-co')
            .executeTakeFirstOrThrow()
        ).n,
      );

    it('should create the coming days ahead and drop whole days past the retention', async () => {
      const start = new Date('2031-03-01T12:00:00Z');
      const first = await rotateArchivePartitions(database.db, {
        now: start,
        retentionDays: 30,
        daysAhead: 3,
      });
      expect(first.created).toEqual([
        'event_archive_p20310228',
        'event_archive_p20310301',
        'event_archive_p20310302',
        'event_archive_p20310303',
        'event_archive_p20310304',
      ]);
      // Idempotent.
      expect(
        (await rotateArchivePartitions(database.db, { now: start, retentionDays: 30, daysAhead: 3 })).created,
      ).toEqual([]);
      await archiveDecidedEvents(database.db, [
        record('old', new Date('2031-03-01T10:00:00Z')),
        record('newer', new Date('2031-03-03T23:59:59Z')),
      ]);
      // Stored in their day's partition, not the default one.
      const inDefault = await database.db
        .selectFrom('event_archive_default' as 'event_archive')
        .select('event_id')
        .where('tenant_id', '=', 'rotation-co')
        .execute();
      expect(inDefault).toEqual([]);

      // 31 days later: 1 March has ended more than 30 days ago; 3 March has not.
      const later = new Date(start.getTime() + 32 * DAY);
      const maintenance = new ArchiveMaintenance({
        db: database.db,
        logger: silentLogger(),
        retentionDays: 30,
        daysAhead: 2,
        now: () => later,
      });
      const rotation = await maintenance.runOnce();
      expect(rotation.dropped).toEqual(
        expect.arrayContaining([
          'event_archive_p20310228',
          'event_archive_p20310301',
          'event_archive_p20310302',
        ]),
      );
      expect(rotation.dropped).not.toContain('event_archive_p20310303');
      expect(rotation.created).toContain(
        `event_archive_p${utcDay(later).toISOString().slice(0, 10).replaceAll('-', '')}`,
      );
      expect(await count()).toBe(1);
      const names = (await listArchivePartitions(database.db)).map((p) => p.name);
      expect(names).toContain('event_archive_p20310303');
      expect(names).not.toContain('event_archive_p20310301');
    });

    it('should keep a row for a day without a partition in the default partition, and purge it past the retention', async () => {
      const orphan = new Date('2040-01-01T00:00:00Z');
      await archiveDecidedEvents(database.db, [record('orphan', orphan)]);
      const where = await sql<{
        t: string;
      }>`select tableoid::regclass::text as t from event_archive where event_id = 'orphan'`.execute(
        database.db,
      );
      expect(where.rows).toEqual([{ t: 'event_archive_default' }]);
      const rotation = await rotateArchivePartitions(database.db, {
        now: new Date(orphan.getTime() + 40 * DAY),
        retentionDays: 30,
        daysAhead: 1,
      });
      expect(rotation.purgedFromDefault).toBe(1);
      // Everything of 2031 went with its partitions; the orphan with the purge.
      expect(await count()).toBe(0);
    });
  });
});
