import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  claimInboxEvents,
  completeClaimedEvents,
  failClaimedEvent,
  insertAndClaimEvents,
  insertPendingEvents,
  releaseExpiredClaims,
} from '@warden/db';
import type { Job } from 'bullmq';
import { QUEUE_NAMES, WardenQueues, createRedis, eventJobId } from '@warden/queue';
import { testServers } from '@warden/testing';
import { call, event, startTestApi, type TestApi } from '../support/api.js';
import {
  auditsOf,
  createTestProcessor,
  decisionsOf,
  inboxRows,
  startTestSupervisor,
  taskEvent,
  waitFor,
  waitForInboxStatus,
  type TestSupervisor,
} from '../support/supervisor.js';

// Exactly once, however an event arrives: every path (queue, HTTP, poller) and every redelivery ends in one
// decision and one audit row, because the claim in Postgres — not the queue — decides who processes it.
describe('supervisor dedupe', () => {
  let api: TestApi;
  let supervisor: TestSupervisor;
  let queues: WardenQueues;
  let redis: ReturnType<typeof createRedis>;
  let key: string;

  const queue = () => queues.get(QUEUE_NAMES.supervisorEvents);
  const outstandingJobs = async () => {
    const counts = await queue().getJobCounts(
      'waiting',
      'active',
      'delayed',
      'prioritized',
      'waiting-children',
    );
    return Object.values(counts).reduce((a, b) => a + b, 0);
  };
  // Concurrent single-event requests to the API may share one `events` job (ingest group commit): a job is
  // one delivery of each event it carries, and its return value lists their outcomes in the same order.
  type Delivery = { event_id: string; outcome: { status: string } };
  const deliveriesOf = (job: Job): Delivery[] =>
    job.name === 'events'
      ? (job.data.events as { event_id: string }[]).map((ev, i) => ({
          event_id: ev.event_id,
          outcome: (job.returnvalue as Delivery['outcome'][])[i]!,
        }))
      : [{ event_id: job.data.event_id as string, outcome: job.returnvalue }];
  const waitForJobState = (jobId: string, state: string) =>
    waitFor(`job ${jobId} to be ${state}`, async () => {
      // The state first, then the job: a job read before it finished would carry no return value.
      if ((await queue().getJobState(jobId)) !== state) return undefined;
      return queue().getJob(jobId);
    });

  beforeAll(async () => {
    api = await startTestApi();
    // POLL_GRACE_MS 0: a pollOnce() re-enqueues every pending row at once. The background poller stays idle.
    supervisor = await startTestSupervisor({
      databaseUrl: api.database.url,
      prefix: api.prefix,
      env: { POLL_GRACE_MS: '0' },
    });
    redis = createRedis(testServers.redisUrl, 'general');
    queues = new WardenQueues({ connection: redis, prefix: api.prefix });
    key = await api.createKey('acme', ['events:write', 'tasks:read']);
  });
  afterAll(async () => {
    await supervisor?.stop();
    await queues?.close();
    redis?.disconnect();
    await api?.stop();
  });

  describe('when the same event arrives by queue, HTTP and poller at once', () => {
    const ids = Array.from({ length: 8 }, (_, i) => `same-${i}`);
    const ts = new Date(Date.now() - 1000).toISOString();
    const body = (id: string) =>
      event(id, {
        task_id: `task-${id}`,
        event_type: 'TASK_STEP_COMPLETED',
        ts,
        payload: { risk_indicators: { error_rate: 0.5, resource_usage: 0.9 } },
      });
    const direct = (id: string) => taskEvent('acme', id, { ...body(id), ts });
    let directOutcomes: Awaited<ReturnType<TestSupervisor['processor']['processEvents']>>;

    beforeAll(async () => {
      // Hold the queue so every delivery is waiting when the worker starts: then they are all taken at once.
      await queue().pause();

      const posts = await Promise.all(
        ids.flatMap((id) =>
          Array.from({ length: 5 }, () => call(`${api.url}/v1/events`, { key, body: body(id) })),
        ),
      );
      expect(posts.map((p) => p.status)).toEqual(posts.map(() => 202));
      expect(posts.reduce((sum, p) => sum + p.body.accepted, 0)).toBe(ids.length);
      expect(posts.reduce((sum, p) => sum + p.body.duplicates, 0)).toBe(ids.length * 4);

      // The SDK's direct path: the same event enqueued five times under job ids of its own.
      await Promise.all(
        ids.flatMap((id) =>
          Array.from({ length: 5 }, (_, i) =>
            queues.enqueue(QUEUE_NAMES.supervisorEvents, 'event', direct(id), {
              jobId: `${eventJobId('acme', id)}-sdk-${i}`,
            }),
          ),
        ),
      );

      // The safety net: the rows are pending past the grace period, so the poller enqueues them once more.
      const polls = await Promise.all(Array.from({ length: 5 }, () => supervisor.poller.pollOnce()));
      expect(polls.reduce((sum, p) => sum + p.reenqueued, 0)).toBeGreaterThanOrEqual(ids.length);
      // Every event waits in at least seven deliveries: the API's, five of the SDK's and the poller's.
      const waiting = await queue().getJobs(['waiting'], 0, -1);
      const deliveries = waiting.flatMap(deliveriesOf);
      for (const id of ids)
        expect(deliveries.filter((d) => d.event_id === id).length, id).toBeGreaterThanOrEqual(7);

      // Release the queue and, at the same moment, deliver each event five more times straight to the processor.
      const resumed = queue().resume();
      directOutcomes = (
        await Promise.all(
          ids.flatMap((id) =>
            Array.from({ length: 5 }, () => supervisor.processor.processEvents([direct(id)])),
          ),
        )
      ).flat();
      await resumed;
      await waitFor('every delivery to be processed', async () => (await outstandingJobs()) === 0);
      await waitForInboxStatus(api.db, 'acme', ids, 'completed');
    });
    // Should the set-up fail while the queue is held, the tests after this group still get a running queue.
    afterAll(() => queue().resume());

    it('should write one decision and one audit row', async () => {
      for (const id of ids) {
        const decisions = await decisionsOf(api.db, 'acme', id);
        expect(decisions).toHaveLength(1);
        expect(decisions[0]!.decision_type).toBe('PAUSE');
        const audits = await auditsOf(api.db, 'acme', id);
        expect(audits).toHaveLength(1);
        expect(audits[0]!.decision_id).toBe(decisions[0]!.decision_id);
        const gates = await api.db
          .selectFrom('task_gates')
          .select('gate_id')
          .where('tenant_id', '=', 'acme')
          .where('task_id', '=', `task-${id}`)
          .execute();
        expect(gates).toHaveLength(1);
      }
    });

    it('should claim each inbox row once and leave it completed', async () => {
      const rows = await inboxRows(api.db, 'acme', ids);
      for (const id of ids)
        expect(rows.get(id)).toMatchObject({
          status: 'completed',
          attempts: 1,
          claim_generation: 1,
          error: null,
        });
    });

    it('should decide each event in exactly one delivery and skip all the others', async () => {
      const jobs = await queue().getJobs(['completed', 'failed'], 0, -1);
      expect(jobs.filter((job) => job.failedReason)).toEqual([]);
      const outcomes = [
        ...jobs.flatMap(deliveriesOf),
        ...directOutcomes.map((outcome, i) => ({ event_id: ids[Math.floor(i / 5)]!, outcome })),
      ];
      for (const id of ids) {
        const mine = outcomes.filter((o) => o.event_id === id).map((o) => o.outcome);
        expect(mine.length).toBeGreaterThanOrEqual(1 + 5 + 1 + 5);
        expect(mine.filter((o) => o.status === 'decided')).toHaveLength(1);
        expect(mine.filter((o) => o.status !== 'decided' && o.status !== 'skipped')).toEqual([]);
      }
    });
  });

  describe('when an event is sent again after its BullMQ job was removed', () => {
    it('should not write a second decision when the job was removed after completion', async () => {
      const ev = event('removed-1', { task_id: 'task-removed', event_type: 'TASK_STATE_CHANGED' });
      expect((await call(`${api.url}/v1/events`, { key, body: ev })).status).toBe(202);
      await waitForInboxStatus(api.db, 'acme', ['removed-1'], 'completed');
      const jobId = eventJobId('acme', 'removed-1');
      const job = await waitForJobState(jobId, 'completed');
      expect(job.returnvalue).toMatchObject({ status: 'decided' });
      await job.remove();
      expect(await queue().getJob(jobId)).toBeUndefined();

      // BullMQ no longer knows the id, so the same job id is accepted as a new job.
      await queues.enqueue(
        QUEUE_NAMES.supervisorEvents,
        'event',
        taskEvent('acme', 'removed-1', { task_id: 'task-removed' }),
        { jobId },
      );
      const again = await waitForJobState(jobId, 'completed');
      expect(again.returnvalue).toEqual({ status: 'skipped', reason: 'not_claimable' });
      expect(await call(`${api.url}/v1/events`, { key, body: ev })).toMatchObject({
        status: 202,
        body: { accepted: 0, duplicates: 1 },
      });

      expect(await decisionsOf(api.db, 'acme', 'removed-1')).toHaveLength(1);
      expect(await auditsOf(api.db, 'acme', 'removed-1')).toHaveLength(1);
    });

    it('should not write a second decision when the queue was obliterated', async () => {
      const ev = event('obliterated-1', { task_id: 'task-obliterated', event_type: 'TASK_STATE_CHANGED' });
      expect((await call(`${api.url}/v1/events`, { key, body: ev })).status).toBe(202);
      await waitForInboxStatus(api.db, 'acme', ['obliterated-1'], 'completed');
      const jobId = eventJobId('acme', 'obliterated-1');
      await waitForJobState(jobId, 'completed');
      await queue().obliterate({ force: true });
      // obliterate pauses the queue before it empties it; keep the worker going.
      await queue().resume();
      expect(await queue().getJob(jobId)).toBeUndefined();

      await queues.enqueue(
        QUEUE_NAMES.supervisorEvents,
        'event',
        taskEvent('acme', 'obliterated-1', { task_id: 'task-obliterated' }),
        { jobId },
      );
      const again = await waitForJobState(jobId, 'completed');
      expect(again.returnvalue).toEqual({ status: 'skipped', reason: 'not_claimable' });
      expect(await decisionsOf(api.db, 'acme', 'obliterated-1')).toHaveLength(1);
      expect(await auditsOf(api.db, 'acme', 'obliterated-1')).toHaveLength(1);
    });

    it('should not write a second decision when an operator put the completed row back to pending', async () => {
      const ev = taskEvent('acme', 'replayed-1', { task_id: 'task-replayed' });
      expect(await supervisor.processor.processEvents([ev])).toEqual([
        expect.objectContaining({ status: 'decided' }),
      ]);
      await api.db
        .updateTable('supervisor_inbox')
        .set({ status: 'pending', processed_at: null })
        .where('tenant_id', '=', 'acme')
        .where('event_id', '=', 'replayed-1')
        .execute();

      expect(await supervisor.processor.processEvents([ev])).toEqual([
        { status: 'skipped', reason: 'already_decided' },
      ]);
      expect((await inboxRows(api.db, 'acme', ['replayed-1'])).get('replayed-1')).toMatchObject({
        status: 'completed',
      });
      expect(await decisionsOf(api.db, 'acme', 'replayed-1')).toHaveLength(1);
      expect(await auditsOf(api.db, 'acme', 'replayed-1')).toHaveLength(1);
    });
  });

  describe('when a stale claim completes late', () => {
    const expired = (eventId: string) =>
      waitFor(`the claim on ${eventId} to expire`, async () => {
        const { rows } = await sql<{
          expired: boolean;
        }>`select claim_expires_at < now() as expired from supervisor_inbox where tenant_id = 'acme' and event_id = ${eventId}`.execute(
          api.db,
        );
        return rows[0]?.expired === true;
      });

    it('should change nothing after another processor claimed and completed the row', async () => {
      const ev = taskEvent('acme', 'stale-1', {
        task_id: 'task-stale-1',
        event_type: 'TASK_CREATED',
        payload: { agent_spec: { name: 'a', capabilities: [] } },
      });
      await insertPendingEvents(api.db, [ev]);
      const [first] = await claimInboxEvents(api.db, [ev], 1);
      expect(first).toMatchObject({ status: 'processing', claim_generation: 1 });
      await expired('stale-1');

      const second = await createTestProcessor(api.db);
      expect(await second.processEvents([ev])).toEqual([
        expect.objectContaining({ status: 'decided', decision_type: 'ALLOW' }),
      ]);
      const completed = (await inboxRows(api.db, 'acme', ['stale-1'])).get('stale-1')!;
      expect(completed).toMatchObject({ status: 'completed', claim_generation: 2, attempts: 2 });

      const late = await api.db.transaction().execute((trx) => completeClaimedEvents(trx, [first!]));
      expect(late.size).toBe(0);
      expect(
        await failClaimedEvent(api.db, first!, 'late failure from the stale processor', {
          maxAttempts: 5,
          retryDelayMs: 1000,
        }),
      ).toBeUndefined();

      expect((await inboxRows(api.db, 'acme', ['stale-1'])).get('stale-1')).toEqual(completed);
      expect(await decisionsOf(api.db, 'acme', 'stale-1')).toHaveLength(1);
      expect(await auditsOf(api.db, 'acme', 'stale-1')).toHaveLength(1);
    });

    it('should change nothing after the poller released the expired claim', async () => {
      const ev = taskEvent('acme', 'stale-2', { task_id: 'task-stale-2' });
      await insertPendingEvents(api.db, [ev]);
      const [first] = await claimInboxEvents(api.db, [ev], 1);
      await expired('stale-2');
      const { released } = await releaseExpiredClaims(api.db, 5, 50);
      expect(released.map((row) => row.event_id)).toContain('stale-2');

      const late = await api.db.transaction().execute((trx) => completeClaimedEvents(trx, [first!]));
      expect(late.size).toBe(0);
      expect((await inboxRows(api.db, 'acme', ['stale-2'])).get('stale-2')).toMatchObject({
        status: 'pending',
        processed_at: null,
      });

      // The row is decided normally afterwards, once.
      expect(await supervisor.processor.processEvents([ev])).toEqual([
        expect.objectContaining({ status: 'decided' }),
      ]);
      expect(await decisionsOf(api.db, 'acme', 'stale-2')).toHaveLength(1);
    });

    it('should not let a claim that is still valid be taken over', async () => {
      const ev = taskEvent('acme', 'held-1', { task_id: 'task-held-1' });
      await insertPendingEvents(api.db, [ev]);
      const [held] = await claimInboxEvents(api.db, [ev], 30_000);
      expect(await supervisor.processor.processEvents([ev])).toEqual([
        { status: 'skipped', reason: 'not_claimable' },
      ]);
      expect(await decisionsOf(api.db, 'acme', 'held-1')).toEqual([]);
      // The holder's completion still counts.
      const done = await api.db.transaction().execute((trx) => completeClaimedEvents(trx, [held!]));
      expect(done.has(String(held!.inbox_id))).toBe(true);
    });
  });

  // The worker's first statement for a delivered group: create the rows of events that came straight onto
  // the queue, claimed, and claim the rows that exist, in one round trip.
  describe('insertAndClaimEvents', () => {
    it('should insert a new event already claimed, claim a pending one, and claim neither again', async () => {
      const fresh = taskEvent('acme', 'ic-fresh', { task_id: 'task-ic' });
      const pending = taskEvent('acme', 'ic-pending', { task_id: 'task-ic' });
      await insertPendingEvents(api.db, [pending]);

      const claimed = await insertAndClaimEvents(api.db, [fresh, pending], 30_000);
      expect(claimed.map((row) => row.event_id).sort()).toEqual(['ic-fresh', 'ic-pending']);
      const rows = await inboxRows(api.db, 'acme', ['ic-fresh', 'ic-pending']);
      for (const id of ['ic-fresh', 'ic-pending'])
        expect(rows.get(id)).toMatchObject({ status: 'processing', claim_generation: 1, attempts: 1 });
      expect(rows.get('ic-fresh')!.claim_expires_at!.getTime()).toBeGreaterThan(Date.now() + 20_000);

      // Both claims are valid: a second delivery claims nothing and changes nothing.
      expect(await insertAndClaimEvents(api.db, [fresh, pending], 30_000)).toEqual([]);
      expect(await inboxRows(api.db, 'acme', ['ic-fresh', 'ic-pending'])).toEqual(rows);
    });

    it('should claim each event once when the same new events are delivered many times at once', async () => {
      const events = Array.from({ length: 5 }, (_, i) =>
        taskEvent('acme', `ic-race-${i}`, { task_id: `task-ic-race-${i % 2}` }),
      );
      // 20 deliveries racing, each with every event (one of them twice in the same batch).
      const deliveries = await Promise.all(
        Array.from({ length: 20 }, (_, n) =>
          insertAndClaimEvents(api.db, n % 2 === 0 ? [...events, events[0]!] : [...events].reverse(), 30_000),
        ),
      );
      const claimedIds = deliveries.flat().map((row) => row.event_id);
      expect(claimedIds.sort()).toEqual(events.map((e) => e.event_id).sort());
      const { rows } = await sql<{ event_id: string; n: string }>`
        select event_id, count(*)::text as n from supervisor_inbox
         where tenant_id = 'acme' and event_id like 'ic-race-%' group by event_id order by event_id`.execute(
        api.db,
      );
      expect(rows).toEqual(events.map((e) => ({ event_id: e.event_id, n: '1' })));
    });
  });
});
