import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { insertPendingEvents } from '@warden/db';
import type { TaskEvent } from '@warden/domain';
import { QUEUE_NAMES, WardenQueues, createRedis } from '@warden/queue';
import {
  createTestDatabase,
  deleteQueuePrefix,
  testQueuePrefix,
  testServers,
  type TestDatabase,
} from '@warden/testing';
import { startTestSupervisor, taskEvent, waitFor, type TestSupervisor } from '../support/supervisor.js';

// After Redis was away the inbox holds events no job carries; the poller alone brings them to the supervisor.
// It must drain a backlog far larger than one take in one pass, feed it no faster than the queue takes it, and
// never cause an event to be decided twice — also with several replicas polling at once.
describe('the supervisor poller draining a backlog', () => {
  const TENANT = 'acme';
  const GRACE_MS = 2000;
  let database: TestDatabase;
  let prefix: string;
  let redis: ReturnType<typeof createRedis>;
  let queues: WardenQueues;
  const supervisors: TestSupervisor[] = [];

  const start = async (env: Record<string, string> = {}) => {
    const supervisor = await startTestSupervisor({
      databaseUrl: database.url,
      prefix,
      env: {
        POLL_BATCH_SIZE: '10',
        POLL_MAX_BATCH_SIZE: '80',
        POLL_GRACE_MS: String(GRACE_MS),
        ...env,
      },
    });
    supervisors.push(supervisor);
    return supervisor;
  };

  const pauseQueue = () => queues.get(QUEUE_NAMES.supervisorEvents).pause();
  const resumeQueue = () => queues.get(QUEUE_NAMES.supervisorEvents).resume();

  /** Events accepted while Redis was away: inbox rows committed as the API does, no job. */
  const acceptDuringOutage = async (label: string, count: number): Promise<TaskEvent[]> => {
    const events = Array.from({ length: count }, (_, i) =>
      taskEvent(TENANT, `${label}-${i}`, {
        task_id: `${label}-task-${i % 25}`,
        event_type: 'TASK_STEP_COMPLETED',
        source: 'http',
        payload: { risk_indicators: { error_rate: i % 7 === 0 ? 0.5 : 0.01 } },
      }),
    );
    await insertPendingEvents(database.db, events);
    // Past the grace period: the poller takes only rows the queue had time to deliver.
    await new Promise((resolve) => setTimeout(resolve, GRACE_MS + 100));
    return events;
  };

  const counts = async (label: string) => {
    const { rows } = await sql<{
      completed: string;
      decisions: string;
      decided_events: string;
      audits: string;
    }>`
      select (select count(*) from supervisor_inbox where event_id like ${`${label}-%`} and status = 'completed') as completed,
             (select count(*) from decisions where event_id like ${`${label}-%`}) as decisions,
             (select count(distinct event_id) from decisions where event_id like ${`${label}-%`}) as decided_events,
             (select count(*) from task_audits where event_id like ${`${label}-%`}) as audits`.execute(
      database.db,
    );
    const row = rows[0]!;
    return {
      completed: Number(row.completed),
      decisions: Number(row.decisions),
      decidedEvents: Number(row.decided_events),
      audits: Number(row.audits),
    };
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    prefix = testQueuePrefix();
    redis = createRedis(testServers.redisUrl, 'general');
    queues = new WardenQueues({ connection: redis, prefix });
  });
  afterEach(async () => {
    while (supervisors.length > 0) await supervisors.pop()!.stop();
    // Jobs a failed test left waiting must not fill the next test's queue.
    const queue = queues.get(QUEUE_NAMES.supervisorEvents);
    await queue.drain(true);
    await queue.resume();
  });
  afterAll(async () => {
    await queues?.close();
    redis?.disconnect();
    await deleteQueuePrefix(prefix);
    await database?.drop();
  });

  describe('when the backlog is many times one take', () => {
    it('should re-enqueue all of it in one pass and decide each event exactly once', async () => {
      const supervisor = await start();
      const events = await acceptDuringOutage('drain', 400);

      // The queue held while the poller runs: a worker deciding an event also takes over the earlier events of
      // its task, which would then no longer be the poller's to count.
      await pauseQueue();
      const pass = await supervisor.poller.pollOnce();
      // 10, 20, 40, 80, 80, … rows per take: all 400 in this pass, where one take of 10 per pass would need 40.
      expect(pass.reenqueued).toBe(events.length);
      expect(pass.backlog).toBe(false);
      await resumeQueue();

      await waitFor('every event to be decided', async () => (await counts('drain')).completed === 400, {
        timeoutMs: 60_000,
      });
      expect(await counts('drain')).toEqual({
        completed: 400,
        decisions: 400,
        decidedEvents: 400,
        audits: 400,
      });
      // Nothing is due any more: the next pass enqueues nothing.
      expect((await supervisor.poller.pollOnce()).reenqueued).toBe(0);
    }, 90_000);
  });

  describe('when two replicas poll the same backlog at once', () => {
    it('should hand each event to one of them and decide it once', async () => {
      const first = await start();
      const second = await start();
      await acceptDuringOutage('replicas', 300);

      await pauseQueue();
      const passes = await Promise.all([first.poller.pollOnce(), second.poller.pollOnce()]);
      // SKIP LOCKED: every row taken by exactly one replica within the grace period.
      expect(passes[0].reenqueued + passes[1].reenqueued).toBe(300);
      await resumeQueue();

      await waitFor('every event to be decided', async () => (await counts('replicas')).completed === 300, {
        timeoutMs: 60_000,
      });
      expect(await counts('replicas')).toEqual({
        completed: 300,
        decisions: 300,
        decidedEvents: 300,
        audits: 300,
      });
    }, 90_000);
  });

  describe('when the supervisor is behind (its queue is full)', () => {
    it('should add no more jobs than the queue has room for, and report the backlog', async () => {
      // A paused queue: nothing is taken, as when the supervisor cannot keep up.
      await pauseQueue();
      const supervisor = await start({ POLL_MAX_QUEUED_JOBS: '50' });
      await acceptDuringOutage('behind', 200);

      const pass = await supervisor.poller.pollOnce();
      expect(pass.reenqueued).toBe(50);
      expect(pass.backlog).toBe(true);
      expect(await queues.countQueued(QUEUE_NAMES.supervisorEvents)).toBe(50);

      // The supervisor catches up: the rest follows, each event still decided once.
      await resumeQueue();
      await waitFor(
        'every event to be decided',
        async () => {
          await supervisor.poller.pollOnce();
          return (await counts('behind')).completed === 200;
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      );
      expect(await counts('behind')).toEqual({
        completed: 200,
        decisions: 200,
        decidedEvents: 200,
        audits: 200,
      });
    }, 90_000);
  });
});
