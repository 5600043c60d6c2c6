/**
 * Several BullMQ workers take `supervisor-events` side by side (EVENT_WORKERS, docs/supervisor.md, "Group
 * commit"). Whichever worker takes an event, it is decided exactly once, and a task's events still apply in
 * inbox order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAMES } from '@warden/queue';
import { waitFor } from '@warden/testing';
import { call, event, startTestApi, type TestApi } from '../support/api.js';
import { startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

describe('events taken by several workers at once', () => {
  let api: TestApi;
  let supervisor: TestSupervisor;

  beforeAll(async () => {
    api = await startTestApi();
    // The poller runs once an hour: only the queue jobs themselves can get these events decided in time.
    supervisor = await startTestSupervisor({
      databaseUrl: api.database.url,
      prefix: api.prefix,
      env: { EVENT_WORKERS: '3', WORKER_CONCURRENCY: '12' },
    });
  });
  afterAll(async () => {
    await supervisor?.stop();
    await api?.stop();
  });

  it('should have EVENT_WORKERS workers taking supervisor-events', async () => {
    const queue = api.service.queues()!.get(QUEUE_NAMES.supervisorEvents);
    await waitFor('the workers to connect', async () => (await queue.getWorkersCount()) === 3, {
      timeoutMs: 10_000,
      intervalMs: 100,
    });
  });

  it("should decide each event once and apply a task's events in inbox order", async () => {
    const key = await api.createKey('acme', ['events:write']);
    const tasks = Array.from({ length: 6 }, (_, t) => `ordered-${t}`);
    // Each task: created, then steps; sent all at once as single-event requests, so the workers race for them.
    const ids = tasks.flatMap((task) =>
      Array.from({ length: 10 }, (_, i) => ({ task, id: `${task}-e${i}`, i })),
    );
    for (const task of tasks) {
      const res = await call(`${api.url}/v1/events`, {
        key,
        body: event(`${task}-e0`, { task_id: task, event_type: 'TASK_CREATED' }),
      });
      expect(res.status).toBe(202);
    }
    const answers = await Promise.all(
      ids
        .filter(({ i }) => i > 0)
        .map(({ task, id }) =>
          call(`${api.url}/v1/events`, {
            key,
            body: event(id, { task_id: task, event_type: 'TASK_STEP_COMPLETED' }),
          }),
        ),
    );
    for (const answer of answers) expect(answer.status).toBe(202);

    await waitFor(
      'every event decided',
      async () => {
        const row = await api.db
          .selectFrom('decisions')
          .select(api.db.fn.countAll<string>().as('n'))
          .where('tenant_id', '=', 'acme')
          .executeTakeFirstOrThrow();
        return Number(row.n) === ids.length;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    const audits = await api.db
      .selectFrom('task_audits as a')
      .innerJoin('supervisor_inbox as i', (join) =>
        join.onRef('i.tenant_id', '=', 'a.tenant_id').onRef('i.event_id', '=', 'a.event_id'),
      )
      .select(['a.task_id', 'a.event_id', 'a.chain_seq', 'i.inbox_id'])
      .where('a.tenant_id', '=', 'acme')
      .where('a.decision_id', 'is not', null)
      .execute();
    // One decision audit per event, none twice.
    expect(audits.map((a) => a.event_id).sort()).toEqual(ids.map((e) => e.id).sort());
    // Per task, the audit chain orders its decisions as the inbox received the events.
    for (const task of tasks) {
      const own = audits.filter((a) => a.task_id === task);
      const byChain = [...own]
        .sort((a, b) => Number(a.chain_seq) - Number(b.chain_seq))
        .map((a) => a.event_id);
      const byInbox = [...own].sort((a, b) => Number(a.inbox_id) - Number(b.inbox_id)).map((a) => a.event_id);
      expect(byChain).toEqual(byInbox);
    }
  });
});
