import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestApi, type TestApi } from '../support/api.js';
import { startTestSupervisor, waitFor, type TestSupervisor } from '../support/supervisor.js';

// The task state machine, end to end through the public API, as a hostile agent would try it: an agent's own
// events never take its task out of `blocked` or `paused`; a person's release or unblock does; a finished task
// frees its resources; failure payloads of every shape are decided, never dropped.
describe('task lifecycle through the API', () => {
  let api: TestApi;
  let supervisor: TestSupervisor;
  let agentKey: string;
  let operatorKey: string;
  const tenant = 'lifecycle-co';

  beforeAll(async () => {
    api = await startTestApi();
    supervisor = await startTestSupervisor({
      databaseUrl: api.database.url,
      prefix: api.prefix,
      env: { MAX_GROUP_SIZE: '4' },
    });
    agentKey = await api.createKey(tenant, ['events:write', 'tasks:read']);
    operatorKey = await api.createKey(tenant, ['tasks:read', 'tasks:approve']);
  });
  afterAll(async () => {
    await supervisor?.stop();
    await api?.stop();
  });

  /** Sends one event as the agent and waits for its decision. */
  async function send(taskId: string, eventType: string, payload: Record<string, unknown> = {}) {
    const eventId = `evt-${randomUUID()}`;
    const posted = await call(`${api.url}/v1/events`, {
      key: agentKey,
      body: { event_id: eventId, task_id: taskId, event_type: eventType, payload },
    });
    expect(posted.status).toBe(202);
    return waitFor(`the decision on ${eventType}`, async () => {
      const res = await call(`${api.url}/v1/tasks/${taskId}/decisions?event_id=${eventId}`, {
        key: agentKey,
      });
      return res.status === 200 && res.body.items.length === 1
        ? (res.body.items[0] as { decision_type: string; reason: string; findings: Array<{ code: string }> })
        : undefined;
    });
  }
  async function task(taskId: string) {
    const res = await call(`${api.url}/v1/tasks/${taskId}`, { key: agentKey });
    expect(res.status).toBe(200);
    return res.body as {
      status: string;
      metadata: Record<string, unknown>;
      retry_count: number;
      open_gates: Array<{ gate_id: string; checkpoint: string }>;
    };
  }
  const clean = {
    step: { name: 'summarize', mode: 'assisted' },
    risk_indicators: { error_rate: 0, resource_usage: 0.1, security_score: 95 },
  };
  const risky = { risk_indicators: { error_rate: 0.9, resource_usage: 0.95 } };
  const harmless = {
    run_mode: 'autonomous',
    agent_spec: { name: 'helper', capabilities: ['network', 'file_write', 'search'] },
    command_spec: { name: 'ls', command: 'ls' },
  };

  describe('when a task is blocked', () => {
    const taskId = `blocked-${randomUUID()}`;

    it('should stay blocked through every kind of event its agent sends', async () => {
      expect((await send(taskId, 'TASK_FAILED', { error_type: 'permission_denied' })).decision_type).toBe(
        'BLOCK',
      );
      const before = await task(taskId);

      for (const [type, payload] of [
        ['TASK_STEP_COMPLETED', clean],
        ['TASK_CREATED', harmless],
        ['TASK_FAILED', { error: 'connection refused' }],
        ['TASK_STATE_CHANGED', { status: 'running' }],
        ['TASK_STATE_CHANGED', { status: 'completed' }],
        ['SOMETHING_ELSE', {}],
      ] as const) {
        const decision = await send(taskId, type, payload);
        expect(decision.decision_type, `${type} ${JSON.stringify(payload)}`).toBe('BLOCK');
        expect(decision.reason).toMatch(/^task is blocked; only a person can unblock it/);
      }
      const after = await task(taskId);
      expect(after.status).toBe('blocked');
      // What the agent re-declared did not replace what it was blocked with.
      expect(after.metadata).toEqual(before.metadata);
      expect(after.retry_count).toBe(before.retry_count);
    });

    it('should refuse an unblock without a reason, or from a key without tasks:approve', async () => {
      expect(
        (await call(`${api.url}/v1/tasks/${taskId}/unblock`, { key: operatorKey, body: {} })).status,
      ).toBe(400);
      expect(
        (await call(`${api.url}/v1/tasks/${taskId}/unblock`, { key: operatorKey, body: { reason: '   ' } }))
          .status,
      ).toBe(400);
      expect(
        (
          await call(`${api.url}/v1/tasks/${taskId}/unblock`, {
            key: agentKey,
            body: { reason: 'let me go' },
          })
        ).status,
      ).toBe(403);
      expect((await task(taskId)).status).toBe('blocked');
    });

    it('should go back to running when a person unblocks it with a reason, and audit who and why', async () => {
      const res = await call(`${api.url}/v1/tasks/${taskId}/unblock`, {
        key: operatorKey,
        body: { reason: 'the permission was granted by the DBA' },
      });
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('running');
      const audits = await call(`${api.url}/v1/tasks/${taskId}/audits?limit=100`, { key: operatorKey });
      const unblocked = audits.body.items.filter(
        (a: { event_type: string }) => a.event_type === 'TASK_UNBLOCKED',
      );
      expect(unblocked).toHaveLength(1);
      expect(unblocked[0].payload).toMatchObject({
        reason: 'the permission was granted by the DBA',
        from: 'blocked',
        to: 'running',
      });
      expect(unblocked[0].payload.unblocked_by).toMatch(/^api_key:/);

      expect((await send(taskId, 'TASK_STEP_COMPLETED', clean)).decision_type).toBe('ALLOW');
      expect((await task(taskId)).status).toBe('running');
      expect(
        (await call(`${api.url}/v1/tasks/${taskId}/unblock`, { key: operatorKey, body: { reason: 'again' } }))
          .status,
      ).toBe(409);
    });

    it('should go back to paused, not running, when a gate opened before the block is still open', async () => {
      const other = `paused-blocked-unblocked-${randomUUID()}`;
      expect((await send(other, 'TASK_STEP_COMPLETED', risky)).decision_type).toBe('PAUSE');
      expect((await send(other, 'TASK_FAILED', { error_type: 'auth_failed' })).decision_type).toBe('BLOCK');
      const res = await call(`${api.url}/v1/tasks/${other}/unblock`, {
        key: operatorKey,
        body: { reason: 'the credentials were rotated' },
      });
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('paused');
      expect(res.body.open_gates).toHaveLength(1);
      expect((await send(other, 'TASK_STEP_COMPLETED', clean)).decision_type).toBe('PAUSE');
      const released = await call(
        `${api.url}/v1/tasks/${other}/gates/${res.body.open_gates[0].gate_id}/release`,
        { key: operatorKey, body: {} },
      );
      expect(released.status).toBe(200);
      expect((await task(other)).status).toBe('running');
    });

    it('should answer 404 for an unblock of a task of another tenant', async () => {
      const other = await api.createKey('other-tenant', ['tasks:approve']);
      expect(
        (await call(`${api.url}/v1/tasks/${taskId}/unblock`, { key: other, body: { reason: 'x' } })).status,
      ).toBe(404);
    });
  });

  describe('when a task is paused at a gate', () => {
    const taskId = `paused-${randomUUID()}`;

    it("should stay paused through its agent's events, and become blocked only if stricter", async () => {
      expect((await send(taskId, 'TASK_STEP_COMPLETED', risky)).decision_type).toBe('PAUSE');
      for (const [type, payload] of [
        ['TASK_STEP_COMPLETED', clean],
        ['TASK_FAILED', { error_type: 'network_timeout' }],
        ['TASK_STATE_CHANGED', { status: 'completed' }],
      ] as const) {
        const decision = await send(taskId, type, payload);
        expect(decision.decision_type, `${type}`).toBe('PAUSE');
        expect(decision.reason).toMatch(/^task is paused at an open gate/);
      }
      const paused = await task(taskId);
      expect(paused.status).toBe('paused');
      expect(paused.retry_count).toBe(0);
      expect(paused.open_gates).toHaveLength(1);
    });

    it('should go back to running when a person releases the gate', async () => {
      const [gate] = (await task(taskId)).open_gates;
      const res = await call(`${api.url}/v1/tasks/${taskId}/gates/${gate!.gate_id}/release`, {
        key: operatorKey,
        body: { note: 'reviewed' },
      });
      expect(res.status).toBe(200);
      expect((await task(taskId)).status).toBe('running');
      expect((await send(taskId, 'TASK_STEP_COMPLETED', clean)).decision_type).toBe('ALLOW');
    });

    it('should become blocked, not running, when a paused task fails for good', async () => {
      const other = `paused-then-blocked-${randomUUID()}`;
      expect((await send(other, 'TASK_STEP_COMPLETED', risky)).decision_type).toBe('PAUSE');
      expect((await send(other, 'TASK_FAILED', { error_type: 'auth_failed' })).decision_type).toBe('BLOCK');
      expect((await task(other)).status).toBe('blocked');
    });
  });

  describe('when a task finishes', () => {
    it('should release its exclusive resources for the next task', async () => {
      const resource = `db-${randomUUID()}`;
      const holder = `holder-${randomUUID()}`;
      const claim = { ...harmless, exclusive_resources: [resource] };
      expect((await send(holder, 'TASK_CREATED', claim)).decision_type).toBe('ALLOW');
      const blocked = await send(`waiter-${randomUUID()}`, 'TASK_CREATED', claim);
      expect(blocked.decision_type).toBe('BLOCK');
      expect(blocked.findings.map((f) => f.code)).toContain('CONFLICT_EXCLUSIVE_RESOURCE');

      expect((await send(holder, 'TASK_STATE_CHANGED', { status: 'completed' })).decision_type).toBe('ALLOW');
      expect((await task(holder)).status).toBe('completed');
      expect((await send(`next-${randomUUID()}`, 'TASK_CREATED', claim)).decision_type).toBe('ALLOW');
      // And a finished task takes no more work.
      expect((await send(holder, 'TASK_STEP_COMPLETED', clean)).decision_type).toBe('BLOCK');
      expect((await task(holder)).status).toBe('completed');
    });

    it.each(['failed', 'cancelled'])('should finish as %s and free its resources too', async (status) => {
      const resource = `queue-${randomUUID()}`;
      const holder = `holder-${randomUUID()}`;
      expect(
        (await send(holder, 'TASK_CREATED', { ...harmless, exclusive_resources: [resource] })).decision_type,
      ).toBe('ALLOW');
      await send(holder, 'TASK_STATE_CHANGED', { state: status });
      expect((await task(holder)).status).toBe(status);
      expect(
        (await send(`next-${randomUUID()}`, 'TASK_CREATED', { ...harmless, exclusive_resources: [resource] }))
          .decision_type,
      ).toBe('ALLOW');
    });
  });

  // Text Warden writes itself can be unstorable even when the input was not: a decoded ANSI-C string, a
  // message cut inside an emoji. The decision must still be recorded, or the task is never blocked.
  describe('when judging the input yields text Postgres cannot store', () => {
    it.each([
      [
        'a lone surrogate decoded from ANSI-C quoting',
        { ...harmless, command_spec: { name: 'x', command: "sudo $'\\ud800'" } },
      ],
      [
        'a NUL decoded from ANSI-C quoting',
        { ...harmless, command_spec: { name: 'x', command: "sudo $'\\c@' id" } },
      ],
      ['a NUL from a hex escape', { ...harmless, command_spec: { name: 'x', command: "sudo $'\\x00'" } }],
    ])('should still record the block: %s', async (_what, payload) => {
      const taskId = `unstorable-${randomUUID()}`;
      expect((await send(taskId, 'TASK_CREATED', payload)).decision_type).toBe('BLOCK');
      expect((await task(taskId)).status).toBe('blocked');
    });

    it('should record a failure whose message is cut inside an emoji', async () => {
      const taskId = `emoji-${randomUUID()}`;
      const decision = await send(taskId, 'TASK_FAILED', {
        error_type: 'permission_denied',
        error_message: `${'a'.repeat(999)}😀 and more`,
      });
      expect(decision.decision_type).toBe('BLOCK');
    });
  });

  describe('when a failure is reported', () => {
    it.each([
      ['the error as a plain string', { error: 'connection refused' }],
      ['the error as an object with a message', { error: { message: 'upstream timeout after 30s' } }],
      ['error_message', { error_message: 'service unavailable' }],
      ['message', { message: 'rate limit hit' }],
      ['error.code', { error: { code: 'connection_refused' } }],
    ])('should read %s and recommend a retry', async (_shape, payload) => {
      const decision = await send(`failing-${randomUUID()}`, 'TASK_FAILED', payload);
      expect(decision.decision_type).toBe('RETRY');
    });

    it.each([
      ['fractional', 2.5],
      ['huge', 3e9],
      ['negative', -100],
      ['a string', '2'],
      ['null', null],
    ])(
      'should decide on a %s retry_count, with a finding, and give no extra retries',
      async (_what, retryCount) => {
        const taskId = `bad-retries-${randomUUID()}`;
        const first = await send(taskId, 'TASK_FAILED', {
          error_type: 'network_timeout',
          retry_count: retryCount,
        });
        expect(first.decision_type).toBe('RETRY');
        expect(first.findings.map((f) => f.code)).toContain('CONSTRAINT_INVALID_RETRY_COUNT');
        // The recorded count rules: three retries by default, however the agent counts.
        const decisions = [first.decision_type];
        for (let i = 0; i < 4; i++)
          decisions.push(
            (await send(taskId, 'TASK_FAILED', { error_type: 'network_timeout', retry_count: retryCount }))
              .decision_type,
          );
        expect(decisions).toEqual(['RETRY', 'RETRY', 'RETRY', 'BLOCK', 'BLOCK']);
        expect((await task(taskId)).status).toBe('blocked');
      },
    );

    it('should not let an agent buy retries by reporting a lower count', async () => {
      const taskId = `resetting-${randomUUID()}`;
      const decisions = [];
      for (let i = 0; i < 5; i++)
        decisions.push(
          (await send(taskId, 'TASK_FAILED', { error_type: 'network_timeout', retry_count: 0 }))
            .decision_type,
        );
      expect(decisions).toEqual(['RETRY', 'RETRY', 'RETRY', 'BLOCK', 'BLOCK']);
    });
  });
});
