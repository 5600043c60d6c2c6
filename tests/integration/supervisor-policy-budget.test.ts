import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REVIEW_CHECKPOINT, type TaskEvent } from '@warden/domain';
import { createTestDatabase, type TestDatabase } from '@warden/testing';
import {
  auditsOf,
  decisionsOf,
  startTestSupervisor,
  taskEvent,
  type TestSupervisor,
} from '../support/supervisor.js';

// The hard policy budget: policies run in worker threads, and a policy that runs away is stopped by CPU time,
// fails its event closed (REQUIRE_REVIEW + SUPERVISOR_ERROR), and the supervisor goes on deciding the rest.
describe('supervisor policy budget', () => {
  let database: TestDatabase;
  let supervisor: TestSupervisor;
  const tenant = 'budget-co';
  const event = (type: string, payload: Record<string, unknown> = {}): TaskEvent =>
    taskEvent(tenant, `evt-${randomUUID()}`, { task_id: `task-${randomUUID()}`, event_type: type, payload });
  const clean = () => event('TASK_STATE_CHANGED', { status: 'running' });

  beforeAll(async () => {
    database = await createTestDatabase();
    supervisor = await startTestSupervisor({
      databaseUrl: database.url,
      prefix: `test-${randomUUID()}`,
      policyRegistryModule: new URL('../support/runaway-policies.ts', import.meta.url).href,
    });
  });
  afterAll(async () => {
    await supervisor?.stop();
    await database?.drop();
  });

  describe('when a policy never returns', () => {
    it('should fail the event closed at a review gate and decide the events around it as usual', async () => {
      const before = clean();
      const runaway = event('TEST_SPINS');
      const after = clean();
      const outcomes = await supervisor.processor.processEvents([before, runaway, after]);
      expect(outcomes).toEqual([
        expect.objectContaining({ status: 'decided', decision_type: 'ALLOW' }),
        expect.objectContaining({ status: 'decided', decision_type: 'REQUIRE_REVIEW' }),
        expect.objectContaining({ status: 'decided', decision_type: 'ALLOW' }),
      ]);

      const [decision] = await decisionsOf(database.db, tenant, runaway.event_id);
      expect(decision).toMatchObject({ policy: 'spinning_test_policy', decision_type: 'REQUIRE_REVIEW' });
      expect(decision!.reason).toMatch(
        /^fail closed: policy spinning_test_policy used \d+ ms of CPU time, over its 200 ms budget/,
      );
      const audits = await auditsOf(database.db, tenant, runaway.event_id);
      expect(audits.map((a) => a.event_type)).toEqual(['SUPERVISOR_DECISION', 'SUPERVISOR_ERROR']);
      const gate = await database.db
        .selectFrom('task_gates')
        .selectAll()
        .where('tenant_id', '=', tenant)
        .where('task_id', '=', runaway.task_id)
        .executeTakeFirstOrThrow();
      expect(gate).toMatchObject({ checkpoint: REVIEW_CHECKPOINT, state: 'open' });
      const task = await database.db
        .selectFrom('tasks')
        .select('status')
        .where('tenant_id', '=', tenant)
        .where('task_id', '=', runaway.task_id)
        .executeTakeFirstOrThrow();
      expect(task.status).toBe('paused');
    });

    it('should keep deciding other groups while a runaway policy is being stopped', async () => {
      const runaway = supervisor.processor.processEvents([event('TEST_SPINS')]);
      // Submitted after the runaway one, on the same single policy thread: they wait for it at most one budget.
      const others = await Promise.all(
        Array.from({ length: 5 }, () => supervisor.processor.processEvents([clean(), clean()])),
      );
      expect(others.flat()).toEqual(
        Array.from({ length: 10 }, () =>
          expect.objectContaining({ status: 'decided', decision_type: 'ALLOW' }),
        ),
      );
      expect(await runaway).toEqual([
        expect.objectContaining({ status: 'decided', decision_type: 'REQUIRE_REVIEW' }),
      ]);
    });
  });

  describe('when a policy backtracks catastrophically on a long input', () => {
    it('should stop it within the budget instead of freezing the worker', async () => {
      const redos = event('TEST_BACKTRACKS', { command: `${'a'.repeat(5000)}!` });
      const [outcome, next] = await supervisor.processor.processEvents([redos, clean()]);
      expect(outcome).toMatchObject({ status: 'decided', decision_type: 'REQUIRE_REVIEW' });
      expect(next).toMatchObject({ status: 'decided', decision_type: 'ALLOW' });
    });
  });

  describe('when a policy waits without using CPU', () => {
    // The budget is CPU time: a policy that is slow because the machine is busy (or, here, asleep) is not
    // failed closed for it.
    it('should allow it, past the budget in wall-clock time', async () => {
      const [outcome] = await supervisor.processor.processEvents([event('TEST_SLEEPS')]);
      expect(outcome).toMatchObject({ status: 'decided', decision_type: 'ALLOW' });
    });
  });

  describe('when a policy takes its worker thread down', () => {
    it('should fail that event closed and decide the next ones on a fresh thread', async () => {
      const crash = event('TEST_EXITS');
      const outcomes = await supervisor.processor.processEvents([clean(), crash, clean()]);
      expect(outcomes.map((o) => (o.status === 'decided' ? o.decision_type : o.status))).toEqual([
        'ALLOW',
        'REQUIRE_REVIEW',
        'ALLOW',
      ]);
      const [decision] = await decisionsOf(database.db, tenant, crash.event_id);
      expect(decision!.reason).toMatch(/^fail closed: the policy worker died/);
      const [later] = await supervisor.processor.processEvents([clean()]);
      expect(later).toMatchObject({ status: 'decided', decision_type: 'ALLOW' });
    });
  });
});
