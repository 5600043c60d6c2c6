/**
 * Expiry (docs/supervisor.md and docs/executor.md, "Expiry"): a pause gate and a change set's approval carry a
 * deadline from the policy; at the deadline the request is denied — the task blocked, the change set rejected —
 * with an audit row in the tenant's hash chain. A release or approval after the deadline is refused (409) even
 * before the sweeper has run. The sweepers are safe with several replicas and against a person acting at the
 * same moment. The clock is injected (`now`), so nothing here sleeps.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  approveChangeSet,
  expireOverdueApprovals,
  expireOverdueGates,
  releaseGate,
  verifyAuditChain,
} from '@warden/db';
import { EXPIRY_ACTOR } from '@warden/domain';
import { call, event, startTestApi, type TestApi } from '../support/api.js';
import { change, changeSetAuditTypes, submission } from '../support/executor.js';
import {
  createTestProcessor,
  loadTestPolicy,
  startTestSupervisor,
  taskEvent,
  waitFor,
} from '../support/supervisor.js';
import { startTestExecutor, tempWorkspace } from '../support/executor.js';

const TENANT = 'expiry-acme';
const MINUTE = 60_000;

describe('expiry', () => {
  let api: TestApi;
  let policyDir: string;
  let agent: string; // events:write — an agent
  let alice: string; // a person: releases gates, approves change sets
  let writer: string; // submits change sets

  beforeAll(async () => {
    // The repository's WriteGate policy with a short wait for HIGH risk: the deadline follows the risk level.
    policyDir = await mkdtemp(join(tmpdir(), 'warden-expiry-'));
    const policyFile = join(policyDir, 'writegate.yaml');
    const repoPolicy = await readFile(
      new URL('../../infra/policies/writegate.yaml', import.meta.url),
      'utf8',
    );
    await writeFile(
      policyFile,
      repoPolicy
        .replace(/^ {2}expire_after_minutes: 1440.*$/m, '  expire_after_minutes: 120')
        .replace(
          /^ {2}expire_after_minutes_by_risk: \{\}.*$/m,
          '  expire_after_minutes_by_risk: { LOW: 30 }',
        ),
    );
    api = await startTestApi({ WRITEGATE_POLICY_FILE: policyFile });
    agent = await api.createKey(TENANT, ['events:write', 'tasks:read'], 'billing-agent');
    alice = await api.createKey(
      TENANT,
      ['tasks:read', 'tasks:approve', 'changesets:approve'],
      'alice@example.com',
    );
    writer = await api.createKey(TENANT, ['changesets:write'], 'docs-agent');
  });
  afterAll(async () => {
    await api?.stop();
    if (policyDir) await rm(policyDir, { recursive: true, force: true });
  });

  /** A task paused at one gate that expires at `expiresAt`, as the supervisor leaves one. */
  async function pausedTask(taskId: string, expiresAt: Date, gateId = `${taskId}-gate`) {
    await api.db
      .insertInto('tasks')
      .values({ tenant_id: TENANT, task_id: taskId, status: 'paused', metadata: JSON.stringify({}) })
      .execute();
    await api.db
      .insertInto('task_gates')
      .values({
        tenant_id: TENANT,
        task_id: taskId,
        gate_id: gateId,
        checkpoint: 'open_plan',
        reason: 'test',
        expires_at: expiresAt,
      })
      .execute();
    return gateId;
  }
  const taskStatus = async (taskId: string) =>
    (
      await api.db
        .selectFrom('tasks')
        .select('status')
        .where('tenant_id', '=', TENANT)
        .where('task_id', '=', taskId)
        .executeTakeFirstOrThrow()
    ).status;
  const gateRow = (gateId: string) =>
    api.db
      .selectFrom('task_gates')
      .selectAll()
      .where('tenant_id', '=', TENANT)
      .where('gate_id', '=', gateId)
      .executeTakeFirstOrThrow();
  const auditTypes = async (taskId: string) =>
    (
      await api.db
        .selectFrom('task_audits')
        .select('event_type')
        .where('tenant_id', '=', TENANT)
        .where('task_id', '=', taskId)
        .orderBy('chain_seq')
        .execute()
    ).map((row) => row.event_type);
  const release = (taskId: string, gate: string) =>
    call(`${api.url}/v1/tasks/${taskId}/gates/${encodeURIComponent(gate)}/release`, { key: alice, body: {} });

  describe('gates', () => {
    it('should give a gate the deadline its checkpoint has in the policy', async () => {
      const policy = await loadTestPolicy((p) => ({
        ...p,
        gates: { expire_after_minutes: 600, checkpoints: { open_plan: { expire_after_minutes: 7 } } },
      }));
      const body = event('exp-pause', {
        task_id: 'exp-paused',
        payload: { rule_spec: { name: 'cleanup', condition: 'age > 30d', action: 'delete old rows' } },
      });
      expect((await call(`${api.url}/v1/events`, { key: agent, body })).status).toBe(202);
      const processor = await createTestProcessor(api.db, { policy });
      const before = Date.now();
      const [outcome] = await processor.processEvents([taskEvent(TENANT, 'exp-pause', body)]);
      expect(outcome).toMatchObject({ status: 'decided', decision_type: 'PAUSE' });

      const [gate] = await api.db
        .selectFrom('task_gates')
        .selectAll()
        .where('tenant_id', '=', TENANT)
        .where('task_id', '=', 'exp-paused')
        .execute();
      expect(gate!.checkpoint).toBe('open_plan');
      const wait = gate!.expires_at.getTime() - before;
      expect(wait).toBeGreaterThanOrEqual(7 * MINUTE - 1000);
      expect(wait).toBeLessThanOrEqual(7 * MINUTE + 60_000);
      const view = await call(`${api.url}/v1/tasks/exp-paused`, { key: alice });
      expect(view.body.open_gates[0].expires_at).toBe(gate!.expires_at.toISOString());
    });

    it('should give a gate written without a deadline 24 hours, never none', async () => {
      await api.db
        .insertInto('tasks')
        .values({ tenant_id: TENANT, task_id: 'exp-legacy', status: 'paused', metadata: '{}' })
        .execute();
      await api.db
        .insertInto('task_gates')
        .values({
          tenant_id: TENANT,
          task_id: 'exp-legacy',
          gate_id: 'g-legacy',
          checkpoint: 'x',
          reason: 'r',
        })
        .execute();
      const gate = await gateRow('g-legacy');
      expect(gate.expires_at.getTime() - gate.opened_at.getTime()).toBe(24 * 60 * MINUTE);
    });

    it('should release a gate before its deadline', async () => {
      const deadline = new Date(Date.now() + 10 * MINUTE);
      const gateId = await pausedTask('exp-in-time', deadline);
      const result = await api.db.transaction().execute((trx) =>
        releaseGate(trx, {
          tenantId: TENANT,
          taskId: 'exp-in-time',
          gate: gateId,
          releasedBy: 'api_key:alice',
          now: new Date(deadline.getTime() - 1),
        }),
      );
      expect(result.status).toBe('released');
      expect(await taskStatus('exp-in-time')).toBe('running');
    });

    it('should refuse a release after the deadline before any sweep, block the task and audit it', async () => {
      const gateId = await pausedTask('exp-late', new Date(Date.now() - MINUTE));
      const res = await release('exp-late', gateId);
      expect(res.status).toBe(409);
      expect(res.body.error.message).toMatch(/expired at .*nobody released it in time.*blocked/);
      expect(await taskStatus('exp-late')).toBe('blocked');
      expect(await gateRow(gateId)).toMatchObject({ state: 'expired', released_by: EXPIRY_ACTOR });
      expect(await auditTypes('exp-late')).toEqual(['GATE_EXPIRED']);

      // Asked again — by id, or by the checkpoint a person reads — it stays a 409 naming the expiry.
      for (const ref of [gateId, 'open_plan']) {
        const again = await release('exp-late', ref);
        expect(again.status).toBe(409);
        expect(again.body.error.message).toMatch(/expired/);
      }
      expect(await auditTypes('exp-late')).toEqual(['GATE_EXPIRED']);
    });

    it('should refuse a release at the deadline itself', async () => {
      const deadline = new Date(Date.now() + 10 * MINUTE);
      const gateId = await pausedTask('exp-at-deadline', deadline);
      const result = await api.db.transaction().execute((trx) =>
        releaseGate(trx, {
          tenantId: TENANT,
          taskId: 'exp-at-deadline',
          gate: gateId,
          releasedBy: 'api_key:alice',
          now: deadline,
        }),
      );
      expect(result.status).toBe('expired');
      expect(await taskStatus('exp-at-deadline')).toBe('blocked');
    });

    it('should let a person unblock a task whose gate expired, with a reason', async () => {
      const gateId = await pausedTask('exp-unblock', new Date(Date.now() - MINUTE));
      expect((await release('exp-unblock', gateId)).status).toBe(409);
      const res = await call(`${api.url}/v1/tasks/exp-unblock/unblock`, {
        key: alice,
        body: { reason: 'looked at it late; it is fine' },
      });
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('running');
    });

    it('should expire only due gates in a sweep, each once, across concurrent sweepers', async () => {
      const now = new Date(Date.now() + 1000 * MINUTE);
      const due = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          pausedTask(`exp-sweep-${i}`, new Date(now.getTime() - i * MINUTE)),
        ),
      );
      await pausedTask('exp-sweep-later', new Date(now.getTime() + MINUTE));

      const passes = await Promise.all(Array.from({ length: 4 }, () => expireOverdueGates(api.db, { now })));
      expect(passes.reduce((sum, pass) => sum + pass.expired, 0)).toBeGreaterThanOrEqual(due.length);
      for (let i = 0; i < due.length; i++) {
        expect(await taskStatus(`exp-sweep-${i}`)).toBe('blocked');
        expect(await auditTypes(`exp-sweep-${i}`)).toEqual(['GATE_EXPIRED']);
      }
      expect(await taskStatus('exp-sweep-later')).toBe('paused');
      // Idempotent: a later pass finds nothing more of these to do.
      await expireOverdueGates(api.db, { now });
      for (let i = 0; i < due.length; i++)
        expect(await auditTypes(`exp-sweep-${i}`)).toEqual(['GATE_EXPIRED']);
      expect(await taskStatus('exp-sweep-later')).toBe('paused');
    });

    it('should end a release racing the sweeper in exactly one outcome, consistent with the task', async () => {
      const deadline = new Date(Date.now() + 2000 * MINUTE);
      for (let i = 0; i < 12; i++) {
        const taskId = `exp-race-${i}`;
        const gateId = await pausedTask(taskId, deadline);
        const [released] = await Promise.all([
          api.db.transaction().execute((trx) =>
            releaseGate(trx, {
              tenantId: TENANT,
              taskId,
              gate: gateId,
              releasedBy: 'api_key:alice',
              now: new Date(deadline.getTime() - 1000),
            }),
          ),
          expireOverdueGates(api.db, { now: new Date(deadline.getTime() + 1000) }),
        ]);
        const types = await auditTypes(taskId);
        const gate = await gateRow(gateId);
        if (released.status === 'released') {
          expect(types).toEqual(['GATE_RELEASED']);
          expect(gate.state).toBe('released');
          expect(await taskStatus(taskId)).toBe('running');
        } else {
          // The sweeper came first: the release saw it expired and said so.
          expect(released.status).toBe('expired');
          expect(types).toEqual(['GATE_EXPIRED']);
          expect(gate.state).toBe('expired');
          expect(await taskStatus(taskId)).toBe('blocked');
        }
        // A sweep after a release leaves the released gate alone.
        await expireOverdueGates(api.db, { now: new Date(deadline.getTime() + 2000) });
        expect(await auditTypes(taskId)).toEqual(types);
      }
    });
  });

  describe('change-set approvals', () => {
    /** Touches an always-review path, so the WriteGate asks for a person (at risk LOW). */
    const reviewed = (id: string) =>
      submission({
        changesetId: id,
        workspace: 'app',
        changes: [change.create(`docs/${id}.schema.json`, `${id}\n`)],
      });
    const submit = async (id: string) => {
      const res = await call(`${api.url}/v1/changesets`, { key: writer, body: reviewed(id) });
      expect(res.status).toBe(201);
      return res.body;
    };
    const overdue = (id: string) =>
      api.db
        .updateTable('changesets')
        .set({ approval_expires_at: new Date(Date.now() - MINUTE) })
        .where('tenant_id', '=', TENANT)
        .where('changeset_id', '=', id)
        .execute();

    it('should give a change set that needs approval the deadline of its risk level', async () => {
      const view = await submit('cs-deadline');
      expect(view.verdict.verdict).toBe('NEED_APPROVAL');
      expect(view.verdict.risk_effective).toBe('LOW');
      const wait = Date.parse(view.approval.expires_at) - Date.parse(view.submitted_at);
      expect(Math.abs(wait - 30 * MINUTE)).toBeLessThan(5000);
    });

    it('should refuse an approval after the deadline before any sweep, reject it and audit it', async () => {
      await submit('cs-late');
      await overdue('cs-late');
      const res = await call(`${api.url}/v1/changesets/cs-late/approve`, { key: alice, body: {} });
      expect(res.status).toBe(409);
      expect(res.body.error.message).toMatch(/approval expired at .*submit it again/);
      const view = await call(`${api.url}/v1/changesets/cs-late`, { key: alice });
      expect(view.body).toMatchObject({
        status: 'rejected',
        approval: { state: 'rejected', decided_by: EXPIRY_ACTOR },
      });
      expect(await changeSetAuditTypes(api.db, TENANT, 'cs-late')).toEqual([
        'CHANGESET_SUBMITTED',
        'CHANGESET_APPROVAL_REQUIRED',
        'CHANGESET_APPROVAL_EXPIRED',
      ]);
      // Rejecting it afterwards is refused the same way; nothing more is written.
      const reject = await call(`${api.url}/v1/changesets/cs-late/reject`, { key: alice, body: {} });
      expect(reject.status).toBe(409);
      expect(reject.body.error.message).toMatch(/expired/);
      expect(await changeSetAuditTypes(api.db, TENANT, 'cs-late')).toHaveLength(3);
    });

    it('should approve before the deadline', async () => {
      await submit('cs-in-time');
      const res = await call(`${api.url}/v1/changesets/cs-in-time/approve`, { key: alice, body: {} });
      expect(res.status).toBe(200);
      expect(res.body.approval.state).toBe('approved');
    });

    it('should sweep only due approvals, each once, across concurrent sweepers, and never an allowed one', async () => {
      const ids = ['cs-sweep-1', 'cs-sweep-2', 'cs-sweep-3'];
      for (const id of ids) await submit(id);
      const allowed = await call(`${api.url}/v1/changesets`, {
        key: writer,
        body: submission({
          changesetId: 'cs-allowed',
          workspace: 'app',
          changes: [change.create('docs/allowed.md', 'fine\n')],
        }),
      });
      expect(allowed.body.approval).toMatchObject({ state: 'not_required', expires_at: null });
      const now = new Date(Date.now() + 31 * MINUTE);
      await Promise.all(Array.from({ length: 4 }, () => expireOverdueApprovals(api.db, { now })));
      for (const id of ids) {
        const types = await changeSetAuditTypes(api.db, TENANT, id);
        expect(types.filter((t) => t === 'CHANGESET_APPROVAL_EXPIRED')).toHaveLength(1);
      }
      expect((await call(`${api.url}/v1/changesets/cs-allowed`, { key: writer })).body.status).not.toBe(
        'rejected',
      );
    });

    it('should end an approval racing the sweeper in exactly one outcome', async () => {
      for (let i = 0; i < 8; i++) {
        const id = `cs-race-${i}`;
        const view = await submit(id);
        const deadline = new Date(view.approval.expires_at);
        const [approved] = await Promise.all([
          api.db.transaction().execute((trx) =>
            approveChangeSet(trx, {
              tenantId: TENANT,
              changesetId: id,
              approver: 'api_key:alice',
              now: new Date(deadline.getTime() - 1000),
            }),
          ),
          expireOverdueApprovals(api.db, { now: new Date(deadline.getTime() + 1000) }),
        ]);
        const types = await changeSetAuditTypes(api.db, TENANT, id);
        if (approved.status === 'approved') {
          expect(types).toContain('CHANGESET_APPROVED');
          expect(types).not.toContain('CHANGESET_APPROVAL_EXPIRED');
        } else {
          expect(approved.status).toBe('expired');
          expect(types).toContain('CHANGESET_APPROVAL_EXPIRED');
          expect(types).not.toContain('CHANGESET_APPROVED');
        }
      }
    });
  });

  describe('when the services sweep on their own', () => {
    it('should block a task in the supervisor-worker and reject a change set in the executor', async () => {
      const supervisor = await startTestSupervisor({
        databaseUrl: api.database.url,
        prefix: api.prefix,
        env: { GATE_EXPIRY_INTERVAL_MS: '100' },
      });
      const ws = await tempWorkspace({ 'docs/readme.md': 'readme\n' });
      const executor = await startTestExecutor({
        databaseUrl: api.database.url,
        prefix: api.prefix,
        workspaces: { app: ws.root },
        consume: false,
        env: { APPROVAL_EXPIRY_INTERVAL_MS: '100' },
      });
      try {
        await pausedTask('exp-service', new Date(Date.now() - MINUTE));
        const res = await call(`${api.url}/v1/changesets`, {
          key: writer,
          body: submission({
            changesetId: 'cs-service',
            workspace: 'app',
            changes: [change.create('docs/cs-service.schema.json', 'x\n')],
          }),
        });
        expect(res.status).toBe(201);
        await api.db
          .updateTable('changesets')
          .set({ approval_expires_at: new Date(Date.now() - MINUTE) })
          .where('tenant_id', '=', TENANT)
          .where('changeset_id', '=', 'cs-service')
          .execute();
        await waitFor(
          'the supervisor to expire the gate',
          async () => (await taskStatus('exp-service')) === 'blocked',
        );
        await waitFor('the executor to reject the change set', async () =>
          (await changeSetAuditTypes(api.db, TENANT, 'cs-service')).includes('CHANGESET_APPROVAL_EXPIRED'),
        );
      } finally {
        await executor.stop();
        await supervisor.stop();
        await ws.remove();
      }
    });
  });

  it('should leave the hash chain intact', async () => {
    expect((await verifyAuditChain(api.db, TENANT)).problems).toEqual([]);
  });
});
