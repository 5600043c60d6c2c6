import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '@warden/db';
import { REVIEW_CHECKPOINT, builtInPolicies, type Policy } from '@warden/domain';
import { createTestDatabase, type TestDatabase } from '@warden/testing';
import { call, event, startTestApi, type TestApi } from '../support/api.js';
import {
  auditsOf,
  createTestProcessor,
  decisionsOf,
  inboxRows,
  loadTestPolicy,
  ownRedisServer,
  settlesWithin,
  startTestSupervisor,
  taskEvent,
  waitFor,
  waitForInboxStatus,
  type OwnRedis,
  type TestSupervisor,
} from '../support/supervisor.js';

// Failing safely: a broken policy fails closed, one bad event cannot sink its group, a poisoned event ends
// `dead` with an audit row, and events accepted while Redis was away are decided once it returns.
describe('supervisor failures', () => {
  let database: TestDatabase;
  let db: Db;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = database.db;
  });
  afterAll(async () => {
    await database?.drop();
  });

  describe('when a policy fails', () => {
    const exploding: Policy = {
      name: 'exploding_test_policy',
      version: '1',
      evaluate() {
        throw new Error('cannot read properties of undefined (reading "steps")');
      },
    };
    const registry = () =>
      builtInPolicies().register('TEST_EXPLODES', exploding).register('TEST_WILD_*', exploding);

    const cases = [
      {
        name: 'throws',
        eventType: 'TEST_EXPLODES',
        enforcement: 'enforce',
        policy: 'exploding_test_policy',
        error: 'threw: cannot read properties',
      },
      {
        name: 'throws in monitor mode',
        eventType: 'TEST_EXPLODES',
        enforcement: 'monitor',
        policy: 'exploding_test_policy',
        error: 'threw: cannot read properties',
      },
      {
        name: 'is routed by wildcard and throws',
        eventType: 'TEST_WILD_CARD',
        enforcement: 'enforce',
        policy: 'exploding_test_policy',
        error: 'threw',
      },
    ] as const;

    it.each(cases)(
      'should decide REQUIRE_REVIEW, open a gate and audit the error when it $name',
      async (c) => {
        const policy = await loadTestPolicy((p) => ({
          ...p,
          enforcement: { ...p.enforcement, default: c.enforcement },
        }));
        const processor = await createTestProcessor(db, { registry: registry(), policy });
        const eventId = `fail-closed-${c.eventType}-${c.enforcement}`;
        const taskId = `task-${eventId}`;

        const [outcome] = await processor.processEvents([
          taskEvent('acme', eventId, { task_id: taskId, event_type: c.eventType, payload: { steps: null } }),
        ]);
        expect(outcome).toMatchObject({ status: 'decided', decision_type: 'REQUIRE_REVIEW' });

        const [decision, ...more] = await decisionsOf(db, 'acme', eventId);
        expect(more).toEqual([]);
        expect(decision).toMatchObject({
          decision_type: 'REQUIRE_REVIEW',
          policy: c.policy,
          would_have: null,
        });
        expect(decision!.reason).toMatch(/^fail closed: /);

        const task = await db
          .selectFrom('tasks')
          .selectAll()
          .where('tenant_id', '=', 'acme')
          .where('task_id', '=', taskId)
          .executeTakeFirstOrThrow();
        expect(task.status).toBe('paused');
        const gates = await db
          .selectFrom('task_gates')
          .selectAll()
          .where('tenant_id', '=', 'acme')
          .where('task_id', '=', taskId)
          .execute();
        expect(gates).toEqual([
          expect.objectContaining({
            state: 'open',
            checkpoint: REVIEW_CHECKPOINT,
            decision_id: decision!.decision_id,
          }),
        ]);

        const audits = await auditsOf(db, 'acme', eventId);
        expect(audits.map((a) => [a.event_type, a.level])).toEqual([
          ['SUPERVISOR_DECISION', 'warn'],
          ['SUPERVISOR_ERROR', 'error'],
        ]);
        expect(audits[0]).toMatchObject({
          decision_id: decision!.decision_id,
          payload: expect.objectContaining({ decision_type: 'REQUIRE_REVIEW', policy: c.policy }),
        });
        expect(audits[1]!.payload).toMatchObject({
          policy: c.policy,
          event_id: eventId,
          event_type: c.eventType,
          error: expect.stringContaining(c.error),
        });
      },
    );

    it('should never record ALLOW for an event whose policy failed', async () => {
      const allowed = await db
        .selectFrom('decisions')
        .select('event_id')
        .where('tenant_id', '=', 'acme')
        .where('event_id', 'like', 'fail-closed-%')
        .where('decision_type', '=', 'ALLOW')
        .execute();
      expect(allowed).toEqual([]);
    });
  });

  describe('when one event of a group cannot be committed', () => {
    const tenant = 'isolation-co';
    const ids = ['iso-good-1', 'iso-poison', 'iso-good-2', 'iso-good-3'];
    const events = ids.map((id, i) =>
      taskEvent(tenant, id, { task_id: `iso-task-${i}`, event_type: 'TASK_STATE_CHANGED' }),
    );
    const poison = events[1]!;
    // Long enough that "not before its retry time" holds on a loaded machine.
    const baseDelayMs = 1000;
    let commits: string[][];
    let processor: Awaited<ReturnType<typeof createTestProcessor>>;

    beforeAll(async () => {
      commits = [];
      processor = await createTestProcessor(db, {
        maxAttempts: 3,
        retryBaseDelayMs: baseDelayMs,
        beforeCommit: async (_trx, claims) => {
          commits.push(claims.map((c) => c.event_id));
          if (claims.some((c) => c.event_id === 'iso-poison'))
            throw new Error('simulated constraint violation for iso-poison');
        },
      });
    });

    it('should decide the others one by one and mark the bad one failed with a retry time', async () => {
      const before = Date.now();
      const outcomes = await processor.processEvents(events);
      expect(outcomes).toEqual([
        expect.objectContaining({ status: 'decided' }),
        { status: 'failed', error: 'simulated constraint violation for iso-poison', dead: false },
        expect.objectContaining({ status: 'decided' }),
        expect.objectContaining({ status: 'decided' }),
      ]);
      // The whole group first, then each event alone.
      expect(commits[0]!.sort()).toEqual([...ids].sort());
      expect(commits.slice(1).map((c) => c.length)).toEqual([1, 1, 1, 1]);

      for (const id of ids.filter((id) => id !== 'iso-poison')) {
        expect(await decisionsOf(db, tenant, id)).toHaveLength(1);
        expect(await auditsOf(db, tenant, id)).toHaveLength(1);
      }
      expect(await decisionsOf(db, tenant, 'iso-poison')).toEqual([]);
      expect(await auditsOf(db, tenant, 'iso-poison')).toEqual([]);

      const rows = await inboxRows(db, tenant, ids);
      expect(rows.get('iso-good-1')).toMatchObject({ status: 'completed' });
      const failed = rows.get('iso-poison')!;
      expect(failed).toMatchObject({
        status: 'failed',
        attempts: 1,
        error: 'simulated constraint violation for iso-poison',
        claim_expires_at: null,
      });
      expect(failed.next_attempt_at!.getTime()).toBeGreaterThanOrEqual(before + baseDelayMs);
      expect(failed.next_attempt_at!.getTime()).toBeLessThanOrEqual(Date.now() + baseDelayMs);
    });

    it('should not take the failed event back before its retry time', async () => {
      expect(await processor.processEvents([poison])).toEqual([
        { status: 'skipped', reason: 'not_claimable' },
      ]);
      expect((await inboxRows(db, tenant, ['iso-poison'])).get('iso-poison')).toMatchObject({
        status: 'failed',
        attempts: 1,
      });
    });

    it('should retry with a doubled delay, then end dead with a SUPERVISOR_EVENT_DEAD audit row after MAX_ATTEMPTS', async () => {
      const due = async () => {
        const row = (await inboxRows(db, tenant, ['iso-poison'])).get('iso-poison')!;
        await waitFor(
          'the failed event to be due',
          async () => row.next_attempt_at!.getTime() <= Date.now(),
          { timeoutMs: 10_000 },
        );
      };

      await due();
      const before = Date.now();
      expect(await processor.processEvents([poison])).toEqual([
        expect.objectContaining({ status: 'failed', dead: false }),
      ]);
      const second = (await inboxRows(db, tenant, ['iso-poison'])).get('iso-poison')!;
      expect(second).toMatchObject({ status: 'failed', attempts: 2 });
      expect(second.next_attempt_at!.getTime()).toBeGreaterThanOrEqual(before + 2 * baseDelayMs);

      await due();
      expect(await processor.processEvents([poison])).toEqual([
        { status: 'failed', error: 'simulated constraint violation for iso-poison', dead: true },
      ]);
      expect((await inboxRows(db, tenant, ['iso-poison'])).get('iso-poison')).toMatchObject({
        status: 'dead',
        attempts: 3,
        next_attempt_at: null,
      });

      const audits = await auditsOf(db, tenant, 'iso-poison');
      expect(audits).toEqual([
        expect.objectContaining({
          event_type: 'SUPERVISOR_EVENT_DEAD',
          level: 'error',
          decision_id: null,
          task_id: poison.task_id,
          payload: expect.objectContaining({
            event_id: 'iso-poison',
            attempts: 3,
            error: 'simulated constraint violation for iso-poison',
          }),
        }),
      ]);
      expect(await decisionsOf(db, tenant, 'iso-poison')).toEqual([]);
      // Dead is final: a later delivery claims nothing.
      expect(await processor.processEvents([poison])).toEqual([
        { status: 'skipped', reason: 'not_claimable' },
      ]);
    });
  });

  describe('when Redis is down while events are accepted', () => {
    let redis: OwnRedis;
    let api: TestApi;
    let supervisor: TestSupervisor;
    let key: string;

    beforeAll(async () => {
      redis = await ownRedisServer();
      await redis.start();
      api = await startTestApi({ REDIS_URL: redis.url, ENQUEUE_TIMEOUT_MS: '200' });
      supervisor = await startTestSupervisor({
        databaseUrl: api.database.url,
        prefix: api.prefix,
        redisUrl: redis.url,
        env: { POLL_INTERVAL_MS: '200', POLL_GRACE_MS: '300' },
      });
      key = await api.createKey('acme', ['events:write', 'tasks:read']);
    });
    afterAll(async () => {
      try {
        // Stop the services against a live Redis, so their connections close cleanly; bounded, because a
        // worker whose Redis client is still reconnecting may never finish closing.
        if (redis && !redis.isRunning()) await redis.start().catch(() => {});
        if (supervisor) await settlesWithin(supervisor.stop(), 15_000);
        if (api) await settlesWithin(api.stop(), 15_000);
      } finally {
        await redis?.stop();
      }
    });

    it('should decide them after Redis returns', async () => {
      // The wiring works while Redis is up.
      expect(
        (await call(`${api.url}/v1/events`, { key, body: event('redis-before', { task_id: 'task-redis' }) }))
          .status,
      ).toBe(202);
      await waitForInboxStatus(api.db, 'acme', ['redis-before'], 'completed');

      await redis.stop();
      const ids = Array.from({ length: 12 }, (_, i) => `redis-down-${i}`);
      const res = await call(`${api.url}/v1/events`, {
        key,
        body: {
          events: ids.map((id, i) =>
            event(id, { task_id: `task-redis-${i % 4}`, event_type: 'TASK_STATE_CHANGED' }),
          ),
        },
      });
      expect(res).toMatchObject({ status: 202, body: { accepted: ids.length, duplicates: 0 } });
      const rows = await inboxRows(api.db, 'acme', ids);
      expect([...rows.values()].map((row) => row.status)).toEqual(ids.map(() => 'pending'));
      // The poller has tried to re-enqueue them (and failed: Redis is away); it must keep going regardless.
      await waitFor(
        'the poller to try the rows while Redis is down',
        async () =>
          [...(await inboxRows(api.db, 'acme', ids)).values()].every((row) => row.last_enqueued_at !== null),
        {
          timeoutMs: 10_000,
        },
      );
      expect(
        await api.db.selectFrom('decisions').select('event_id').where('event_id', 'in', ids).execute(),
      ).toEqual([]);

      await redis.start();
      await waitForInboxStatus(api.db, 'acme', ids, 'completed', 40_000);
      for (const id of ids) expect(await decisionsOf(api.db, 'acme', id)).toHaveLength(1);
    }, 60_000);
  });
});
