import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChainBreak, type TaskEvent } from '@warden/domain';
import { createRedis, decisionStreamKey } from '@warden/queue';
import { testServers } from '@warden/testing';
import { call, event, startTestApi, type TestApi } from '../support/api.js';
import {
  auditChain,
  auditsOf,
  createTestProcessor,
  decisionsOf,
  startTestSupervisor,
  taskEvent,
  waitFor,
  waitForInboxStatus,
  type TestSupervisor,
} from '../support/supervisor.js';

// The whole path: POST /v1/events → inbox → queue → supervisor-worker → one transaction → audits readable
// through the API, decisions on the Redis stream. Policies with state (ordering, conflicts) are driven through
// the service's own DecisionProcessor, whose groups are what the worker commits.
describe('supervisor pipeline', () => {
  let api: TestApi;
  let supervisor: TestSupervisor;
  let key: string;

  beforeAll(async () => {
    api = await startTestApi();
    // Small groups, several in flight: concurrent group transactions, as under load.
    supervisor = await startTestSupervisor({
      databaseUrl: api.database.url,
      prefix: api.prefix,
      env: { MAX_GROUP_SIZE: '8', MAX_GROUPS_IN_FLIGHT: '3' },
    });
    key = await api.createKey('acme', ['events:write', 'tasks:read']);
  });
  afterAll(async () => {
    await supervisor?.stop();
    await api?.stop();
  });

  describe('when events are posted through the API', () => {
    const sourceTs = new Date(Date.now() - 2000).toISOString();
    const cases = [
      {
        name: 'ALLOW',
        body: event('pipe-allow', {
          task_id: 'task-allow',
          ts: sourceTs,
          payload: { run_mode: 'assisted', agent_spec: { name: 'summarizer', capabilities: ['read'] } },
        }),
        decision: 'ALLOW',
        audit: { event_type: 'SUPERVISOR_ALLOWED', level: 'info' },
        status: 'verifying',
      },
      {
        name: 'BLOCK',
        body: event('pipe-block', {
          task_id: 'task-block',
          ts: sourceTs,
          payload: {
            agent_spec: { name: 'installer', capabilities: ['shell'] },
            command_spec: { name: 'install', command: 'sudo', args: ['apt-get', 'install', 'jq'] },
          },
        }),
        decision: 'BLOCK',
        audit: { event_type: 'SUPERVISOR_BLOCKED', level: 'warn' },
        status: 'blocked',
      },
      {
        name: 'PAUSE',
        body: event('pipe-pause', {
          task_id: 'task-pause',
          ts: sourceTs,
          payload: { rule_spec: { name: 'cleanup', condition: 'age > 30d', action: 'delete old rows' } },
        }),
        decision: 'PAUSE',
        audit: { event_type: 'SUPERVISOR_PAUSED', level: 'warn' },
        status: 'paused',
      },
      {
        name: 'RETRY',
        body: event('pipe-retry', {
          task_id: 'task-retry',
          ts: sourceTs,
          event_type: 'TASK_FAILED',
          payload: { error_type: 'network_timeout', message: 'upstream timed out' },
        }),
        decision: 'RETRY',
        audit: { event_type: 'SUPERVISOR_RETRY_RECOMMENDED', level: 'info' },
        status: 'retrying',
      },
    ] as const;
    const eventIds = cases.map((c) => c.body.event_id);

    beforeAll(async () => {
      const res = await call(`${api.url}/v1/events`, { key, body: { events: cases.map((c) => c.body) } });
      expect(res.status).toBe(202);
      expect(res.body).toEqual({ accepted: cases.length, duplicates: 0 });
      await waitForInboxStatus(api.db, 'acme', eventIds, 'completed');
    });

    it.each(cases)('should write exactly one $name decision, task row and audit row', async (c) => {
      const decisions = await decisionsOf(api.db, 'acme', c.body.event_id);
      expect(decisions).toHaveLength(1);
      const decision = decisions[0]!;
      expect(decision).toMatchObject({ task_id: c.body.task_id, decision_type: c.decision });

      const tasks = await api.db
        .selectFrom('tasks')
        .selectAll()
        .where('tenant_id', '=', 'acme')
        .where('task_id', '=', c.body.task_id)
        .execute();
      expect(tasks).toHaveLength(1);
      expect(tasks[0]!.status).toBe(c.status);

      const audits = await auditsOf(api.db, 'acme', c.body.event_id);
      expect(audits).toHaveLength(1);
      expect(audits[0]).toMatchObject({
        ...c.audit,
        decision_id: decision.decision_id,
        task_id: c.body.task_id,
      });
      // Decision lag is processed_at − source_event_ts: the event's own time, not the time it was received.
      expect(audits[0]!.source_event_ts?.toISOString()).toBe(sourceTs);
      expect(audits[0]!.processed_at.getTime()).toBeGreaterThan(new Date(sourceTs).getTime());
    });

    it.each(cases)(
      'should serve the $name audit row at GET /v1/tasks/:id/audits with the decision payload',
      async (c) => {
        const [decision] = await decisionsOf(api.db, 'acme', c.body.event_id);
        const res = await call(`${api.url}/v1/tasks/${c.body.task_id}/audits`, { key });
        expect(res.status).toBe(200);
        expect(res.body.items).toHaveLength(1);
        const item = res.body.items[0];
        expect(item).toMatchObject({ ...c.audit, decision_id: decision!.decision_id });
        expect(item.payload).toMatchObject({
          decision_type: c.decision,
          reason: decision!.reason,
          findings: decision!.findings,
          actions: decision!.actions,
          policy: decision!.policy,
          policy_version: decision!.policy_version,
        });
        expect(item.payload.policy_version).toMatch(/\+/);
        if (c.decision !== 'ALLOW') expect(item.payload.findings.length).toBeGreaterThan(0);
        for (const finding of item.payload.findings)
          expect(finding).toMatchObject({
            code: expect.stringMatching(/^[A-Z][A-Z0-9_]*$/),
            kind: expect.any(String),
          });
      },
    );

    it('should record the retry count on a RETRY', async () => {
      const task = await call(`${api.url}/v1/tasks/task-retry`, { key });
      expect(task.body).toMatchObject({ status: 'retrying', retry_count: 1 });
      const [audit] = await auditsOf(api.db, 'acme', 'pipe-retry');
      expect(audit!.payload).toMatchObject({ retry_count: 1 });
    });

    it('should open a task_gates row at open_plan for a PAUSE', async () => {
      const [decision] = await decisionsOf(api.db, 'acme', 'pipe-pause');
      const gates = await api.db
        .selectFrom('task_gates')
        .selectAll()
        .where('tenant_id', '=', 'acme')
        .where('task_id', '=', 'task-pause')
        .execute();
      expect(gates).toHaveLength(1);
      expect(gates[0]).toMatchObject({
        checkpoint: 'open_plan',
        state: 'open',
        decision_id: decision!.decision_id,
        released_at: null,
      });
      const task = await call(`${api.url}/v1/tasks/task-pause`, { key });
      expect(task.body.open_gates).toEqual([
        expect.objectContaining({ gate_id: gates[0]!.gate_id, checkpoint: 'open_plan', state: 'open' }),
      ]);
    });

    it('should open no gate for ALLOW, BLOCK or RETRY', async () => {
      const gates = await api.db
        .selectFrom('task_gates')
        .select('task_id')
        .where('tenant_id', '=', 'acme')
        .where('task_id', 'in', ['task-allow', 'task-block', 'task-retry'])
        .execute();
      expect(gates).toEqual([]);
    });

    it('should publish each decision once on the decision stream', async () => {
      const redis = createRedis(testServers.redisUrl, 'general');
      try {
        const entries = await redis.xrange(decisionStreamKey(api.prefix), '-', '+');
        const published = entries.map(([, fields]) => {
          const record: Record<string, string> = {};
          for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
          return record;
        });
        for (const c of cases) {
          const [decision] = await decisionsOf(api.db, 'acme', c.body.event_id);
          const mine = published.filter((p) => p.decision_id === decision!.decision_id);
          expect(mine).toEqual([
            {
              tenant_id: 'acme',
              task_id: c.body.task_id,
              event_id: c.body.event_id,
              decision_id: decision!.decision_id,
              decision_type: c.decision,
            },
          ]);
        }
      } finally {
        redis.disconnect();
      }
    });
  });

  describe('when a task is created and its first step arrives in the same group', () => {
    const created = (eventId: string, taskId: string, ts: Date): TaskEvent =>
      taskEvent('acme', eventId, {
        task_id: taskId,
        event_type: 'TASK_CREATED',
        ts: ts.toISOString(),
        payload: { run_mode: 'assisted', agent_spec: { name: 'helper', capabilities: ['search', 'read'] } },
      });
    const autonomousStep = (eventId: string, taskId: string, ts: Date): TaskEvent =>
      taskEvent('acme', eventId, {
        task_id: taskId,
        event_type: 'TASK_STEP_COMPLETED',
        ts: ts.toISOString(),
        payload: { step: { name: 'plan', mode: 'autonomous', tool: 'search' } },
      });

    it('should judge the step against the metadata the creation stored', async () => {
      const t0 = new Date(Date.now() - 1000);
      const outcomes = await supervisor.processor.processEvents([
        created('order-created-1', 'task-order-1', t0),
        autonomousStep('order-step-1', 'task-order-1', new Date(t0.getTime() + 10)),
      ]);
      expect(outcomes).toEqual([
        expect.objectContaining({ status: 'decided', decision_type: 'ALLOW' }),
        expect.objectContaining({ status: 'decided', decision_type: 'PAUSE' }),
      ]);

      const [step] = await decisionsOf(api.db, 'acme', 'order-step-1');
      expect(step!.findings).toEqual([
        expect.objectContaining({
          code: 'CONSTRAINT_RUN_MODE_EXCEEDED',
          kind: 'CONSTRAINT',
          severity: 'HIGH',
        }),
      ]);
      const task = await api.db
        .selectFrom('tasks')
        .selectAll()
        .where('tenant_id', '=', 'acme')
        .where('task_id', '=', 'task-order-1')
        .executeTakeFirstOrThrow();
      expect(task.status).toBe('paused');
      expect(task.metadata).toMatchObject({ run_mode: 'assisted', capabilities: ['search', 'read'] });
      const gates = await api.db
        .selectFrom('task_gates')
        .selectAll()
        .where('tenant_id', '=', 'acme')
        .where('task_id', '=', 'task-order-1')
        .execute();
      expect(gates).toEqual([
        expect.objectContaining({ checkpoint: 'open_plan', state: 'open', decision_id: step!.decision_id }),
      ]);
    });

    // Inbox order is the one order that holds across groups too; producer timestamps are the agent's to set.
    it('should apply them in inbox order, whatever their timestamps', async () => {
      const t0 = new Date(Date.now() - 1000);
      const outcomes = await supervisor.processor.processEvents([
        created('order-created-2', 'task-order-2', new Date(t0.getTime() + 10)),
        autonomousStep('order-step-2', 'task-order-2', t0),
      ]);
      // Applied by timestamp, the step would come first (no run mode declared yet → allowed).
      expect(outcomes).toEqual([
        expect.objectContaining({ status: 'decided', decision_type: 'ALLOW' }),
        expect.objectContaining({ status: 'decided', decision_type: 'PAUSE' }),
      ]);
      const task = await api.db
        .selectFrom('tasks')
        .select('status')
        .where('tenant_id', '=', 'acme')
        .where('task_id', '=', 'task-order-2')
        .executeTakeFirstOrThrow();
      expect(task.status).toBe('paused');
    });

    it('should flag a tool outside the capabilities the creation declared', async () => {
      const t0 = new Date(Date.now() - 1000);
      const outcomes = await supervisor.processor.processEvents([
        created('order-created-3', 'task-order-3', t0),
        taskEvent('acme', 'order-step-3', {
          task_id: 'task-order-3',
          event_type: 'TASK_STEP_COMPLETED',
          ts: new Date(t0.getTime() + 10).toISOString(),
          payload: { step: { mode: 'assisted', tool: 'shell' } },
        }),
      ]);
      expect(outcomes[1]).toMatchObject({ status: 'decided', decision_type: 'PAUSE' });
      const [step] = await decisionsOf(api.db, 'acme', 'order-step-3');
      expect(step!.findings).toEqual([
        expect.objectContaining({ code: 'CONSTRAINT_UNDECLARED_TOOL', kind: 'CONSTRAINT', severity: 'HIGH' }),
      ]);
    });
  });

  describe('when a new task declares an exclusive resource a running task holds', () => {
    const createdWith = (eventId: string, taskId: string, resources: string[]) =>
      taskEvent('acme', eventId, {
        task_id: taskId,
        event_type: 'TASK_CREATED',
        payload: { agent_spec: { name: 'migrator', capabilities: ['db'] }, exclusive_resources: resources },
      });

    it('should block it with a CONFLICT finding naming the holder', async () => {
      expect(
        await supervisor.processor.processEvents([
          createdWith('conflict-a-created', 'task-holder', ['db:orders']),
        ]),
      ).toEqual([expect.objectContaining({ decision_type: 'ALLOW' })]);
      await supervisor.processor.processEvents([
        taskEvent('acme', 'conflict-a-step', {
          task_id: 'task-holder',
          event_type: 'TASK_STEP_COMPLETED',
          payload: { step: { name: 'migrate' } },
        }),
      ]);
      const holder = await api.db
        .selectFrom('tasks')
        .select('status')
        .where('tenant_id', '=', 'acme')
        .where('task_id', '=', 'task-holder')
        .executeTakeFirstOrThrow();
      expect(holder.status).toBe('running');

      const [outcome] = await supervisor.processor.processEvents([
        createdWith('conflict-b-created', 'task-contender', ['db:orders', 'db:users']),
      ]);
      expect(outcome).toMatchObject({ status: 'decided', decision_type: 'BLOCK' });
      const [decision] = await decisionsOf(api.db, 'acme', 'conflict-b-created');
      expect(decision!.findings).toEqual([
        expect.objectContaining({
          code: 'CONFLICT_EXCLUSIVE_RESOURCE',
          kind: 'CONFLICT',
          severity: 'HIGH',
          evidence: [{ task_id: 'task-holder', resources: ['db:orders'] }],
        }),
      ]);
      const contender = await api.db
        .selectFrom('tasks')
        .select('status')
        .where('tenant_id', '=', 'acme')
        .where('task_id', '=', 'task-contender')
        .executeTakeFirstOrThrow();
      expect(contender.status).toBe('blocked');
    });

    it('should not see a conflict with a task that holds other resources or is blocked', async () => {
      // task-contender (blocked above) declared db:users; task-holder holds only db:orders.
      const [outcome] = await supervisor.processor.processEvents([
        createdWith('conflict-c-created', 'task-other', ['db:users']),
      ]);
      expect(outcome).toMatchObject({ status: 'decided', decision_type: 'ALLOW' });
    });

    // Within one group, a task the group itself just admitted holds its resources for the events after it.
    it('should block the second of two tasks declaring the same resource in one group', async () => {
      const outcomes = await supervisor.processor.processEvents([
        createdWith('same-group-a', 'task-sg-a', ['queue:billing']),
        createdWith('same-group-b', 'task-sg-b', ['queue:billing']),
      ]);
      expect(outcomes.map((o) => (o.status === 'decided' ? o.decision_type : o.status)).sort()).toEqual([
        'ALLOW',
        'BLOCK',
      ]);
    });

    // Across concurrent groups, conflict checks of one tenant take turns (an advisory lock), so the second
    // group sees the first's new holder. To make the race deterministic, the first group to reach its commit
    // point stays open until the other one is waiting for a lock behind it.
    it('should block one of two tasks declaring the same resource in concurrent groups', async () => {
      let arrived = 0;
      const racing = await createTestProcessor(api.db, {
        beforeCommit: async () => {
          arrived += 1;
          if (arrived > 1) return;
          await waitFor(
            'the other group to wait for a lock',
            async () => {
              const { rows } = await sql<{
                n: number;
              }>`select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`.execute(
                api.db,
              );
              return rows[0]!.n > 0;
            },
            { timeoutMs: 5000 },
          ).catch(() => {});
        },
      });
      const outcomes = await Promise.all([
        racing.processEvents([createdWith('race-a', 'task-race-a', ['bucket:exports'])]),
        racing.processEvents([createdWith('race-b', 'task-race-b', ['bucket:exports'])]),
      ]);
      expect(
        outcomes
          .flat()
          .map((o) => (o.status === 'decided' ? o.decision_type : o.status))
          .sort(),
      ).toEqual(['ALLOW', 'BLOCK']);
    });
  });

  describe('when many groups append audit rows for one tenant at once', () => {
    const tenant = 'chain-co';
    let chainKey: string;
    const ids = Array.from({ length: 96 }, (_, i) => `chain-${i}`);

    beforeAll(async () => {
      chainKey = await api.createKey(tenant, ['events:write', 'tasks:read']);
      const kinds = (i: number) =>
        i % 3 === 0
          ? {
              event_type: 'TASK_CREATED',
              payload: { rule_spec: { name: 'r', condition: 'c', action: 'purge cache' } },
            }
          : i % 3 === 1
            ? { event_type: 'TASK_FAILED', payload: { error_type: 'rate_limited' } }
            : {
                event_type: 'TASK_STEP_COMPLETED',
                payload: { risk_indicators: { error_rate: 0.35 }, result: { warnings: ['slow'] } },
              };
      const http = ids.slice(0, 48);
      const direct = ids.slice(48);
      await Promise.all([
        // Through the worker: jobs taken concurrently, committed in groups of up to 8, 3 at a time.
        ...[0, 1, 2, 3].map((batch) =>
          call(`${api.url}/v1/events`, {
            key: chainKey,
            body: {
              events: http
                .slice(batch * 12, batch * 12 + 12)
                .map((id, i) => event(id, { task_id: `chain-task-${i % 7}`, ...kinds(i) })),
            },
          }),
        ),
        // And straight into the processor, racing the worker for the tenant's chain head.
        ...[0, 1, 2, 3, 4, 5].map((batch) =>
          supervisor.processor.processEvents(
            direct
              .slice(batch * 8, batch * 8 + 8)
              .map((id, i) => taskEvent(tenant, id, { task_id: `chain-task-${i % 5}`, ...kinds(i) })),
          ),
        ),
      ]);
      await waitForInboxStatus(api.db, tenant, ids, 'completed');
    });

    it('should leave an unbroken hash chain', async () => {
      const chain = await auditChain(api.db, tenant);
      expect(chain).toHaveLength(ids.length);
      expect(chain.map((row) => row.chain_seq)).toEqual(ids.map((_, i) => i + 1));
      // Several transactions wrote the chain, not one.
      expect(new Set(chain.map((row) => row.processed_at)).size).toBeGreaterThan(3);
      expect(findChainBreak(chain)).toBeUndefined();
    });

    it('should name the row whose payload was edited afterwards', async () => {
      const before = await auditChain(api.db, tenant);
      const victim = before[Math.floor(before.length / 2)]!;
      await sql`update task_audits set payload = jsonb_set(payload, '{reason}', '"nothing to see here"') where audit_id = ${victim.audit_id}`.execute(
        api.db,
      );

      const after = await auditChain(api.db, tenant);
      expect(findChainBreak(after)).toMatchObject({
        audit_id: victim.audit_id,
        chain_seq: victim.chain_seq,
        reason: expect.stringContaining('edited'),
      });
      // The rows before it still verify.
      expect(findChainBreak(after.slice(0, victim.chain_seq - 1))).toBeUndefined();
    });
  });
});
