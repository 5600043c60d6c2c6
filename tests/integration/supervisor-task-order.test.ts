import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertPendingEvents } from '@warden/db';
import {
  decideInOrder,
  builtInPolicies,
  taskStateKey,
  type DecisionState,
  type TaskEvent,
} from '@warden/domain';
import { createTestDatabase, type TestDatabase } from '@warden/testing';
import { createTestProcessor, loadTestPolicy, taskEvent } from '../support/supervisor.js';

// Per-task ordering: a task's events apply in inbox order whichever group — and whichever processor — they
// land in. Each round posts a few events per task to the inbox, then deals them out at random to concurrent
// groups of two processors, and checks every task against deciding its events one by one in inbox order.
describe('per-task ordering across concurrent groups', () => {
  let database: TestDatabase;
  const tenant = 'order-co';

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  // A seeded generator, so a failing round can be replayed.
  function random(seed: number) {
    let state = seed >>> 0;
    return () => {
      state = (state * 1664525 + 1013904223) >>> 0;
      return state / 2 ** 32;
    };
  }
  const kinds: Array<(taskId: string) => Pick<TaskEvent, 'event_type' | 'payload'>> = [
    () => ({
      event_type: 'TASK_CREATED',
      payload: { run_mode: 'assisted', agent_spec: { name: 'a', capabilities: ['search'] } },
    }),
    () => ({ event_type: 'TASK_STEP_COMPLETED', payload: { step: { mode: 'autonomous' } } }),
    () => ({ event_type: 'TASK_STEP_COMPLETED', payload: { risk_indicators: { error_rate: 0 } } }),
    () => ({ event_type: 'TASK_FAILED', payload: { error_type: 'permission_denied' } }),
    () => ({ event_type: 'TASK_FAILED', payload: { error: 'connection refused' } }),
    () => ({ event_type: 'TASK_STATE_CHANGED', payload: { status: 'completed' } }),
  ];

  it.each([1, 2, 3, 4, 5])("should apply each task's events in inbox order (seed %i)", async (seed) => {
    const next = random(seed);
    const policy = await loadTestPolicy();
    const processors = [
      await createTestProcessor(database.db, { policy }),
      await createTestProcessor(database.db, { policy }),
    ];
    const tasks = Array.from({ length: 8 }, () => `task-${randomUUID()}`);
    const events: TaskEvent[] = [];
    for (let i = 0; i < 32; i++) {
      const taskId = tasks[Math.floor(next() * tasks.length)]!;
      events.push(
        taskEvent(tenant, `evt-${seed}-${i}-${randomUUID()}`, {
          task_id: taskId,
          ...kinds[Math.floor(next() * kinds.length)]!(taskId),
        }),
      );
    }
    // The inbox order is the order of `events`.
    await insertPendingEvents(database.db, events);

    // Deal them out, shuffled, to concurrent groups.
    const shuffled = [...events].sort(() => next() - 0.5);
    const groups: TaskEvent[][] = [];
    while (shuffled.length > 0) groups.push(shuffled.splice(0, 1 + Math.floor(next() * 4)));
    await Promise.all(groups.map((group, i) => processors[i % 2]!.processEvents(group)));

    // What deciding them one by one, in inbox order, gives.
    const state: DecisionState = {
      tasks: new Map(
        tasks.map((t) => [
          taskStateKey({ tenant_id: tenant, task_id: t }),
          { status: undefined, metadata: {}, retry_count: 0 },
        ]),
      ),
      holders: new Map(),
    };
    const expected = decideInOrder(events, state, policy, builtInPolicies());

    const decided = await database.db
      .selectFrom('decisions')
      .select(['event_id', 'decision_type', 'reason'])
      .where(
        'event_id',
        'in',
        events.map((e) => e.event_id),
      )
      .execute();
    const byEvent = new Map(decided.map((d) => [d.event_id, d]));
    expect(decided).toHaveLength(events.length);
    events.forEach((event, i) => {
      expect(byEvent.get(event.event_id), `${event.task_id} event ${i} (${event.event_type})`).toMatchObject({
        decision_type: expected[i]!.decision.decision_type,
        reason: expected[i]!.decision.reason,
      });
    });
    const rows = await database.db
      .selectFrom('tasks')
      .select(['task_id', 'status', 'retry_count'])
      .where('task_id', 'in', tasks)
      .execute();
    for (const row of rows) {
      const model = state.tasks.get(taskStateKey({ tenant_id: tenant, task_id: row.task_id }))!;
      expect(row, row.task_id).toMatchObject({ status: model.status, retry_count: model.retry_count });
    }
    // And the audit trail records each task's decisions in inbox order.
    const audits = await database.db
      .selectFrom('task_audits')
      .select(['event_id', 'chain_seq'])
      .where(
        'event_id',
        'in',
        events.map((e) => e.event_id),
      )
      .where('decision_id', 'is not', null)
      .execute();
    const seqOf = new Map(audits.map((a) => [a.event_id, Number(a.chain_seq)]));
    for (const taskId of tasks) {
      const seqs = events.filter((e) => e.task_id === taskId).map((e) => seqOf.get(e.event_id)!);
      expect(seqs, taskId).toEqual([...seqs].sort((a, b) => a - b));
    }
  });

  it('should decide the earlier undecided events of a task first when a later one is processed alone', async () => {
    const processor = await createTestProcessor(database.db);
    const taskId = `task-${randomUUID()}`;
    const [created, step, failed] = [
      taskEvent(tenant, `early-1-${randomUUID()}`, {
        task_id: taskId,
        event_type: 'TASK_CREATED',
        payload: { agent_spec: { name: 'a', capabilities: [] } },
      }),
      taskEvent(tenant, `early-2-${randomUUID()}`, { task_id: taskId, event_type: 'TASK_STEP_COMPLETED' }),
      taskEvent(tenant, `early-3-${randomUUID()}`, {
        task_id: taskId,
        event_type: 'TASK_FAILED',
        payload: { error: 'connection refused' },
      }),
    ];
    await insertPendingEvents(database.db, [created, step, failed]);

    // Only the last one is delivered: the two before it are taken over and decided first, in inbox order.
    expect(await processor.processEvents([failed])).toEqual([expect.objectContaining({ status: 'decided' })]);
    const audits = await database.db
      .selectFrom('task_audits')
      .select(['event_id', 'chain_seq'])
      .where('task_id', '=', taskId)
      .where('decision_id', 'is not', null)
      .orderBy('chain_seq')
      .execute();
    expect(audits.map((a) => a.event_id)).toEqual([created.event_id, step.event_id, failed.event_id]);
    // Their own late deliveries find nothing to do, and nothing is decided twice.
    expect(await processor.processEvents([created, step])).toEqual([
      { status: 'skipped', reason: 'not_claimable' },
      { status: 'skipped', reason: 'not_claimable' },
    ]);
    const decisions = await database.db
      .selectFrom('decisions')
      .select('event_id')
      .where('task_id', '=', taskId)
      .execute();
    expect(decisions).toHaveLength(3);
  });
});
