import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { DecisionProcessor } from '@warden/supervisor-worker';
import { SupervisorPolicyFileSchema, builtInPolicies, type TaskEvent } from '@warden/domain';
import { createLogger } from '@warden/observability';
import { call, startTestApi, type TestApi } from '../support/api.js';

const run = promisify(execFile);
const repoRoot = new URL('../../', import.meta.url).pathname;

function taskEvent(
  tenant: string,
  id: string,
  task: string,
  type: string,
  payload: Record<string, unknown> = {},
): TaskEvent {
  return {
    event_id: id,
    tenant_id: tenant,
    task_id: task,
    event_type: type,
    ts: new Date().toISOString(),
    source: 'queue',
    payload,
  };
}

describe('supervisor routes and the audit trail', () => {
  let api: TestApi;
  let processor: DecisionProcessor;
  let acme: string;
  let globex: string;

  beforeAll(async () => {
    api = await startTestApi();
    acme = await api.createKey('acme', ['tasks:read', 'tasks:approve']);
    globex = await api.createKey('globex', ['tasks:read', 'tasks:approve']);
    processor = new DecisionProcessor({
      db: api.db,
      policy: SupervisorPolicyFileSchema.parse({}),
      registry: builtInPolicies(),
      logger: createLogger({ service: 'test', level: 'silent' }),
    });
    // Two MEDIUM risks in one step → PAUSE with a gate at open_plan.
    await processor.processEvents([
      taskEvent('acme', 'create-1', 'paused-task', 'TASK_CREATED'),
      taskEvent('acme', 'step-1', 'paused-task', 'TASK_STEP_COMPLETED', {
        risk_indicators: { error_rate: 0.9, resource_usage: 0.95 },
      }),
    ]);
  });
  afterAll(async () => {
    await api.stop();
  });

  async function openGateId(): Promise<string> {
    const task = await call(`${api.url}/v1/tasks/paused-task`, { key: acme });
    expect(task.body.status).toBe('paused');
    expect(task.body.open_gates).toHaveLength(1);
    return task.body.open_gates[0].gate_id as string;
  }

  it('should show the decision for one event', async () => {
    const res = await call(`${api.url}/v1/tasks/paused-task/decisions?event_id=step-1`, { key: acme });
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(1);
    expect(res.body.items[0]).toMatchObject({
      event_id: 'step-1',
      decision_type: 'PAUSE',
      policy: 'task_step_risk',
    });
  });

  it("should refuse to release another tenant's gate with 404 and leave it open", async () => {
    const gateId = await openGateId();
    const res = await call(`${api.url}/v1/tasks/paused-task/gates/${gateId}/release`, {
      key: globex,
      method: 'POST',
      body: {},
    });
    expect(res.status).toBe(404);
    expect((await call(`${api.url}/v1/tasks/paused-task`, { key: acme })).body.open_gates).toHaveLength(1);
  });

  it('should release a gate, move the task back to running and audit who released it', async () => {
    const gateId = await openGateId();
    const res = await call(`${api.url}/v1/tasks/paused-task/gates/${gateId}/release`, {
      key: acme,
      method: 'POST',
      body: { note: 'reviewed' },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      gate_id: gateId,
      state: 'released',
      released_by: expect.stringMatching(/^api_key:/),
    });
    const task = await call(`${api.url}/v1/tasks/paused-task`, { key: acme });
    expect(task.body.status).toBe('running');
    expect(task.body.open_gates).toHaveLength(0);
    const audits = await call(`${api.url}/v1/tasks/paused-task/audits`, { key: acme });
    const release = audits.body.items.find((a: { event_type: string }) => a.event_type === 'GATE_RELEASED');
    expect(release.payload).toMatchObject({
      gate_id: gateId,
      note: 'reviewed',
      released_by: res.body.released_by,
    });
    const again = await call(`${api.url}/v1/tasks/paused-task/gates/${gateId}/release`, {
      key: acme,
      method: 'POST',
      body: {},
    });
    expect(again.status).toBe(409);
  });

  it('should refuse a release without the tasks:approve scope', async () => {
    const reader = await api.createKey('acme', ['tasks:read']);
    const res = await call(`${api.url}/v1/tasks/paused-task/gates/any/release`, {
      key: reader,
      method: 'POST',
      body: {},
    });
    expect(res.status).toBe(403);
  });

  it('should report the backlog with its alert levels for the tenant only', async () => {
    const key = await api.createKey('acme', ['events:write', 'tasks:read']);
    const events = Array.from({ length: 12 }, (_, i) => ({
      event_id: `waiting-${i}`,
      task_id: 'queued-task',
      event_type: 'TASK_CREATED',
    }));
    await call(`${api.url}/v1/events`, { key, body: { events } });
    const res = await call(`${api.url}/v1/supervisor/backlog`, { key: acme });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      scope: 'tenant',
      pending: 12,
      completed: 2,
      level: 'warning',
      levels: { backlog: 'warning', lag: 'ok', failure_rate: 'ok' },
    });
    const other = await call(`${api.url}/v1/supervisor/backlog`, { key: globex });
    expect(other.body.pending).toBe(0);
  });

  describe('warden audit verify', () => {
    const verify = async (...args: string[]) =>
      run(process.execPath, ['--import', 'tsx', 'packages/cli/src/main.ts', 'audit', 'verify', ...args], {
        cwd: repoRoot,
        env: { ...process.env, DATABASE_URL: api.database.url },
      }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({
          code: e.code,
          stdout: e.stdout,
          stderr: e.stderr,
        }),
      );

    it('should verify an untouched chain', async () => {
      const result = await verify('--tenant', 'acme');
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/✓ acme: \d+ rows verified/);
    });

    it('should name the row whose payload was edited in SQL', async () => {
      const victim = await api.db
        .selectFrom('task_audits')
        .select(['audit_id'])
        .where('tenant_id', '=', 'acme')
        .where('event_id', '=', 'create-1')
        .executeTakeFirstOrThrow();
      await sql`update task_audits set payload = jsonb_set(payload, '{reason}', '"nothing to see"') where audit_id = ${victim.audit_id}`.execute(
        api.db,
      );
      const result = await verify('--tenant', 'acme');
      expect(result.code).toBe(1);
      expect(result.stdout).toContain(`broken at audit_id ${victim.audit_id}`);
      expect(result.stdout).toContain('edited');
      expect(result.stderr).not.toMatch(/\n\s+at /);
    });
  });
});

describe('WardenClient.waitForDecision', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(async () => {
    await api.stop();
  });

  it('should wait through the 404 of an unseen task and return the decision once it is made', async () => {
    const { WardenClient } = await import('@warden/client');
    const client = new WardenClient({
      baseUrl: api.url,
      apiKey: await api.createKey('acme', ['events:write', 'tasks:read']),
    });
    const { event_ids } = await client.sendEvents([
      { task_id: 'waited', event_type: 'TASK_FAILED', payload: { error_type: 'network_timeout' } },
    ]);
    const processor = new DecisionProcessor({
      db: api.db,
      policy: SupervisorPolicyFileSchema.parse({}),
      registry: builtInPolicies(),
      logger: createLogger({ service: 'test', level: 'silent' }),
    });
    // Decide only after the client has started waiting, so the first polls see no task at all.
    const waiting = client.waitForDecision('waited', event_ids[0]!, {
      timeoutMs: 20_000,
      pollIntervalMs: 50,
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const row = await api.db
      .selectFrom('supervisor_inbox')
      .selectAll()
      .where('event_id', '=', event_ids[0]!)
      .executeTakeFirstOrThrow();
    await processor.processEvents([
      {
        ...taskEvent('acme', row.event_id, 'waited', 'TASK_FAILED', row.payload),
        ts: row.event_ts.toISOString(),
      },
    ]);
    const decision = await waiting;
    expect(decision).toMatchObject({
      event_id: event_ids[0],
      decision_type: 'RETRY',
      policy: 'task_failed_retry',
    });
  });

  it('should time out with a WardenConnectionError when no decision comes', async () => {
    const { WardenClient, WardenConnectionError } = await import('@warden/client');
    const client = new WardenClient({
      baseUrl: api.url,
      apiKey: await api.createKey('acme', ['tasks:read']),
    });
    await expect(
      client.waitForDecision('never', 'nope', { timeoutMs: 300, pollIntervalMs: 50 }),
    ).rejects.toBeInstanceOf(WardenConnectionError);
  });
});
