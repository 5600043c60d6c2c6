/**
 * Separation of duties (README "Scopes", docs/supervisor.md "Gates"): no key both writes an agent's events and
 * approves what the agent did; every release, unblock, approval and rejection names the key's owner; a gate is
 * released by its id or by the checkpoint of the task's open gate.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTenant, insertApiKey, verifyAuditChain } from '@warden/db';
import { displayPrefix, generateApiKey, hashApiKey, ValidationError, type Scope } from '@warden/domain';
import { createProgram, exitCodeFor } from '@warden/cli';
import { call, event, startTestApi, type TestApi } from '../support/api.js';
import { change, submission } from '../support/executor.js';

const TENANT = 'sod-acme';

describe('separation of duties', () => {
  let api: TestApi;
  let agent: string; // events:write, tasks:read — what an agent holds
  let alice: string; // a person: tasks:approve, changesets:approve
  let admin: string; // a person's admin key
  let writer: string; // submits change sets
  let outsider: string; // another tenant's approver

  beforeAll(async () => {
    api = await startTestApi();
    agent = await api.createKey(TENANT, ['events:write', 'tasks:read'], 'billing-agent');
    alice = await api.createKey(
      TENANT,
      ['tasks:read', 'tasks:approve', 'changesets:approve'],
      'alice@example.com',
    );
    admin = await api.createKey(TENANT, ['admin'], 'root@example.com');
    writer = await api.createKey(TENANT, ['changesets:write'], 'docs-agent');
    outsider = await api.createKey('sod-globex', ['tasks:read', 'tasks:approve'], 'mallory');
  });
  afterAll(async () => {
    await api?.stop();
  });

  /** A task paused at the given gates ({ gate_id: checkpoint }), as the supervisor leaves one. */
  async function pausedTask(taskId: string, gates: Record<string, string>, status = 'paused') {
    await api.db
      .insertInto('tasks')
      .values({ tenant_id: TENANT, task_id: taskId, status, metadata: JSON.stringify({}) })
      .execute();
    if (Object.keys(gates).length === 0) return;
    await api.db
      .insertInto('task_gates')
      .values(
        Object.entries(gates).map(([gate_id, checkpoint]) => ({
          tenant_id: TENANT,
          task_id: taskId,
          gate_id,
          checkpoint,
          reason: 'test',
        })),
      )
      .execute();
  }
  const release = (key: string, taskId: string, gate: string, body: unknown = {}) =>
    call(`${api.url}/v1/tasks/${taskId}/gates/${encodeURIComponent(gate)}/release`, { key, body });
  const audits = async (taskId: string, type: string) =>
    (
      await call(`${api.url}/v1/tasks/${encodeURIComponent(taskId)}/audits?limit=100`, { key: admin })
    ).body.items.filter((a: { event_type: string }) => a.event_type === type);

  describe('keys', () => {
    it.each<[string, Scope[]]>([
      ['tasks:approve', ['events:write', 'tasks:approve']],
      ['changesets:approve', ['events:write', 'changesets:approve']],
      ['triggers:approve', ['events:write', 'triggers:approve']],
      ['admin', ['events:write', 'admin']],
    ])(
      'should refuse to store an agent key (events:write) with %s, naming both scopes',
      async (_, scopes) => {
        await ensureTenant(api.db, TENANT);
        const key = generateApiKey();
        const attempt = insertApiKey(api.db, {
          tenantId: TENANT,
          name: 'sneaky',
          owner: 'billing-agent',
          keyHash: hashApiKey(key),
          keyPrefix: displayPrefix(key),
          scopes,
        });
        await expect(attempt).rejects.toBeInstanceOf(ValidationError);
        await expect(attempt).rejects.toThrow(/separation of duties/);
        for (const scope of scopes) await expect(attempt).rejects.toThrow(`"${scope}"`);
        const stored = await api.db
          .selectFrom('api_keys')
          .select('key_id')
          .where('key_hash', '=', hashApiKey(key))
          .execute();
        expect(stored).toEqual([]);
      },
    );

    it('should refuse a key without an owner', async () => {
      const key = generateApiKey();
      await expect(
        insertApiKey(api.db, {
          tenantId: TENANT,
          name: 'nobody',
          owner: ' ',
          keyHash: hashApiKey(key),
          keyPrefix: displayPrefix(key),
          scopes: ['tasks:read'],
        }),
      ).rejects.toBeInstanceOf(ValidationError);
    });

    it("should not let an admin key write an agent's events, and say why", async () => {
      const res = await call(`${api.url}/v1/events`, {
        key: admin,
        body: event('admin-1', { task_id: 'a' }),
      });
      expect(res.status).toBe(403);
      expect(res.body.error.message).toMatch(/"events:write".*separation of duties/);
    });

    it("should not let an agent's key release a gate or unblock a task", async () => {
      await pausedTask('agent-self', { 'gate-self': 'plan' });
      expect((await release(agent, 'agent-self', 'gate-self')).status).toBe(403);
      expect((await release(agent, 'agent-self', 'plan')).status).toBe(403);
      const unblock = await call(`${api.url}/v1/tasks/agent-self/unblock`, {
        key: agent,
        body: { reason: 'trust me' },
      });
      expect(unblock.status).toBe(403);
      expect(unblock.body.error.message).toContain('"tasks:approve"');
      const gate = await api.db
        .selectFrom('task_gates')
        .select('state')
        .where('tenant_id', '=', TENANT)
        .where('gate_id', '=', 'gate-self')
        .executeTakeFirstOrThrow();
      expect(gate.state).toBe('open');
    });

    it('should not let a stored key that writes events approve, even one written around insertApiKey', async () => {
      // A row no create path would write (a hand-made insert, an old backup restored after the migration).
      const key = generateApiKey();
      await api.db
        .insertInto('api_keys')
        .values({
          tenant_id: TENANT,
          name: 'smuggled',
          owner: 'smuggled',
          key_hash: hashApiKey(key),
          key_prefix: displayPrefix(key),
          scopes: ['events:write', 'tasks:approve', 'admin'],
        })
        .execute();
      await pausedTask('smuggled-self', { 'gate-smuggled': 'plan' });
      const res = await release(key, 'smuggled-self', 'gate-smuggled');
      expect(res.status).toBe(403);
      expect(res.body.error.message).toContain('"tasks:approve"');
      // It still acts as the agent it is.
      const sent = await call(`${api.url}/v1/events`, {
        key,
        body: event('smuggled-1', { task_id: 'smuggled-self' }),
      });
      expect(sent.status).toBe(202);
    });
  });

  describe('releasing a gate by its checkpoint', () => {
    it('should release the open gate at the checkpoint and audit the key and its owner', async () => {
      await pausedTask('by-name', { 'gate-bn-1': 'open_plan' });
      const res = await release(alice, 'by-name', 'open_plan', { note: 'looked at the plan' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ gate_id: 'gate-bn-1', checkpoint: 'open_plan', state: 'released' });
      expect(res.body.released_by).toMatch(/^api_key:/);
      const task = await call(`${api.url}/v1/tasks/by-name`, { key: alice });
      expect(task.body.status).toBe('running');
      const [row, ...more] = await audits('by-name', 'GATE_RELEASED');
      expect(more).toEqual([]);
      expect(row.payload).toEqual({
        gate_id: 'gate-bn-1',
        checkpoint: 'open_plan',
        released_by: res.body.released_by,
        released_by_owner: 'alice@example.com',
        note: 'looked at the plan',
      });
      // A retried release by the same name is a 409 naming the gate, not a 404.
      const again = await release(alice, 'by-name', 'open_plan');
      expect(again.status).toBe(409);
      expect(again.body.error.message).toContain('gate-bn-1');
    });

    it('should answer 409 naming the ids when two open gates share the checkpoint, and release by id', async () => {
      await pausedTask('two-gates', { 'gate-tg-a': 'deploy', 'gate-tg-b': 'deploy' });
      const ambiguous = await release(alice, 'two-gates', 'deploy');
      expect(ambiguous.status).toBe(409);
      expect(ambiguous.body.error.message).toContain('gate-tg-a');
      expect(ambiguous.body.error.message).toContain('gate-tg-b');
      expect(await audits('two-gates', 'GATE_RELEASED')).toEqual([]);

      expect((await release(alice, 'two-gates', 'gate-tg-a')).status).toBe(200);
      // Only one open gate is left at the checkpoint: the name now finds it.
      const second = await release(alice, 'two-gates', 'deploy');
      expect(second.status).toBe(200);
      expect(second.body.gate_id).toBe('gate-tg-b');
      expect((await call(`${api.url}/v1/tasks/two-gates`, { key: alice })).body.status).toBe('running');
    });

    it('should read the reference as a gate id first', async () => {
      // Gate "review" (already released) and another open gate at checkpoint "review": the id wins.
      await pausedTask('id-first', { review: 'plan', 'gate-if-2': 'review' });
      expect((await release(alice, 'id-first', 'review')).status).toBe(200);
      const again = await release(alice, 'id-first', 'review');
      expect(again.status).toBe(409);
      expect(again.body.error.message).toContain('"review" was already released');
    });

    it('should answer 404 for an unknown gate or checkpoint, and for another tenant', async () => {
      await pausedTask('unknown-ref', { 'gate-ur-1': 'plan' });
      const unknown = await release(alice, 'unknown-ref', 'no-such-checkpoint');
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.message).toContain('no-such-checkpoint');
      expect((await release(outsider, 'unknown-ref', 'plan')).status).toBe(404);
      expect((await release(outsider, 'unknown-ref', 'gate-ur-1')).status).toBe(404);
      expect((await release(alice, 'no-such-task', 'plan')).status).toBe(404);
    });

    it('should let an admin key (a person) release, naming its owner', async () => {
      await pausedTask('admin-release', { 'gate-ar-1': 'plan' });
      expect((await release(admin, 'admin-release', 'plan')).status).toBe(200);
      const [row] = await audits('admin-release', 'GATE_RELEASED');
      expect(row.payload.released_by_owner).toBe('root@example.com');
    });
  });

  it('should name the owner in the unblock audit', async () => {
    await pausedTask('blocked-task', {}, 'blocked');
    const res = await call(`${api.url}/v1/tasks/blocked-task/unblock`, {
      key: alice,
      body: { reason: 'the DBA granted it' },
    });
    expect(res.status).toBe(200);
    const [row] = await audits('blocked-task', 'TASK_UNBLOCKED');
    expect(row.payload).toMatchObject({
      unblocked_by: expect.stringMatching(/^api_key:/),
      unblocked_by_owner: 'alice@example.com',
      reason: 'the DBA granted it',
    });
  });

  it("should name the owner in a change set's approval and rejection audits", async () => {
    const reviewed = (id: string) =>
      submission({
        changesetId: id,
        workspace: 'default',
        changes: [change.create(`docs/${id}.md`, `${id}\n`)],
        plan: { risk_level_proposed: 'HIGH' },
      });
    for (const id of ['sod-approve', 'sod-reject']) {
      const submitted = await call(`${api.url}/v1/changesets`, { key: writer, body: reviewed(id) });
      expect(submitted.status).toBe(201);
      expect(submitted.body.approval.state).toBe('pending');
    }
    const checksum = (await call(`${api.url}/v1/changesets/sod-approve`, { key: alice })).body.checksum;
    expect(
      (await call(`${api.url}/v1/changesets/sod-approve/approve`, { key: alice, body: { checksum } })).status,
    ).toBe(200);
    expect(
      (await call(`${api.url}/v1/changesets/sod-reject/reject`, { key: admin, body: { reason: 'no' } }))
        .status,
    ).toBe(200);
    const trail = async (id: string, type: string) =>
      (await call(`${api.url}/v1/changesets/${id}/audits?limit=100`, { key: admin })).body.items.find(
        (a: { event_type: string }) => a.event_type === type,
      );
    expect((await trail('sod-approve', 'CHANGESET_APPROVED')).payload).toMatchObject({
      by: expect.stringMatching(/^api_key:/),
      by_owner: 'alice@example.com',
    });
    expect((await trail('sod-reject', 'CHANGESET_REJECTED')).payload).toMatchObject({
      by: expect.stringMatching(/^api_key:/),
      by_owner: 'root@example.com',
      reason: 'no',
    });
    expect((await verifyAuditChain(api.db, TENANT)).problems).toEqual([]);
  });

  describe('denying a gate', () => {
    const deny = (
      key: string,
      taskId: string,
      gate: string,
      body: unknown = { reason: 'not this quarter' },
    ) => call(`${api.url}/v1/tasks/${taskId}/gates/${encodeURIComponent(gate)}/deny`, { key, body });
    const task = async (taskId: string) =>
      (await call(`${api.url}/v1/tasks/${encodeURIComponent(taskId)}`, { key: admin })).body;

    it('should close the gate as denied, block the task and audit who and why', async () => {
      await pausedTask('deny-1', { 'g-deny-1': 'deploy', 'g-deny-1b': 'budget' });
      const denied = await deny(alice, 'deny-1', 'deploy', { reason: '  touches prod on a Friday  ' });
      expect(denied.status).toBe(200);
      expect(denied.body).toMatchObject({
        gate_id: 'g-deny-1',
        state: 'denied',
        released_by: expect.any(String),
      });
      expect(await task('deny-1')).toMatchObject({ status: 'blocked' });
      expect(await audits('deny-1', 'GATE_DENIED')).toEqual([
        expect.objectContaining({
          level: 'warn',
          payload: expect.objectContaining({
            gate_id: 'g-deny-1',
            checkpoint: 'deploy',
            denied_by_owner: 'alice@example.com',
            reason: 'touches prod on a Friday',
            from: 'paused',
            to: 'blocked',
          }),
        }),
      ]);
      // Releasing the other gate cannot undo the denial: the task stays blocked until a person unblocks it.
      expect((await release(alice, 'deny-1', 'budget', { note: 'ok' })).status).toBe(200);
      expect(await task('deny-1')).toMatchObject({ status: 'blocked' });
      expect((await verifyAuditChain(api.db, TENANT)).problems).toEqual([]);
    });

    it('should refuse to release or deny again a gate that was denied (409)', async () => {
      await pausedTask('deny-2', { 'g-deny-2': 'deploy' });
      expect((await deny(alice, 'deny-2', 'g-deny-2')).status).toBe(200);
      const released = await release(alice, 'deny-2', 'g-deny-2', { note: 'changed my mind' });
      expect(released.status).toBe(409);
      expect(released.body.error.message).toMatch(/was denied by/);
      expect((await deny(alice, 'deny-2', 'g-deny-2')).status).toBe(409);
      expect(await task('deny-2')).toMatchObject({ status: 'blocked' });
    });

    it('should need a reason, the approving scope, and the tenant', async () => {
      await pausedTask('deny-3', { 'g-deny-3': 'deploy' });
      for (const body of [{}, { reason: '   ' }, { reason: 'x'.repeat(2001) }]) {
        const refused = await deny(alice, 'deny-3', 'deploy', body);
        expect(refused.status).toBe(400);
        expect(refused.body.error.details.map((d: { path: string }) => d.path)).toContain('reason');
      }
      // An agent's key cannot deny (nor release) its own gate; another tenant's approver sees nothing.
      expect((await deny(agent, 'deny-3', 'deploy')).status).toBe(403);
      expect((await deny(outsider, 'deny-3', 'deploy')).status).toBe(404);
      expect(await task('deny-3')).toMatchObject({ status: 'paused' });
    });

    it('should let a person unblock a denied task with a reason', async () => {
      await pausedTask('deny-4', { 'g-deny-4': 'deploy' });
      expect((await deny(alice, 'deny-4', 'deploy')).status).toBe(200);
      const unblocked = await call(`${api.url}/v1/tasks/deny-4/unblock`, {
        key: alice,
        body: { reason: 'fixed the plan' },
      });
      expect(unblocked.status).toBe(200);
      expect(await task('deny-4')).toMatchObject({ status: 'running' });
    });
  });

  describe('warden gates (the CLI, through the API)', () => {
    async function warden(args: string[], key: string) {
      let out = '';
      let err = '';
      const program = createProgram({
        environment: { env: { WARDEN_API_URL: api.url, WARDEN_API_KEY: key }, cwd: process.cwd() },
        io: { out: (t) => void (out += t), err: (t) => void (err += t) },
      });
      try {
        await program.parseAsync(['node', 'warden', ...args]);
        return { code: 0, out, err };
      } catch (error) {
        return {
          code: exitCodeFor(error),
          out,
          err: err + (error instanceof Error ? error.message : String(error)),
        };
      }
    }
    const status = async (taskId: string) =>
      (await call(`${api.url}/v1/tasks/${taskId}`, { key: admin })).body.status as string;

    it('should release by checkpoint, deny with a reason, and unblock, as the key given', async () => {
      await pausedTask('cli-gate-1', { 'g-cli-1': 'deploy' });
      const released = await warden(
        ['gates', 'release', 'cli-gate-1', 'deploy', '--note', 'looks fine'],
        alice,
      );
      expect(released, released.err).toMatchObject({ code: 0 });
      expect(released.out).toMatch(/released gate g-cli-1 \(checkpoint deploy\) of task cli-gate-1/);
      expect(await status('cli-gate-1')).toBe('running');

      await pausedTask('cli-gate-2', { 'g-cli-2': 'deploy' });
      expect((await warden(['gates', 'deny', 'cli-gate-2', 'deploy'], alice)).code).toBe(2);
      const denied = await warden(
        ['gates', 'deny', 'cli-gate-2', 'g-cli-2', '--reason', 'no', '--json'],
        alice,
      );
      expect(denied.code, denied.err).toBe(0);
      expect(JSON.parse(denied.out)).toMatchObject({ gate_id: 'g-cli-2', state: 'denied' });
      expect(await status('cli-gate-2')).toBe('blocked');
      expect((await warden(['gates', 'unblock', 'cli-gate-2', '--reason', 'fixed'], alice)).code).toBe(0);
      expect(await status('cli-gate-2')).toBe('running');
    });

    it("should refuse an agent's key with the API's 403", async () => {
      await pausedTask('cli-gate-3', { 'g-cli-3': 'deploy' });
      const refused = await warden(['gates', 'release', 'cli-gate-3', 'deploy'], agent);
      expect(refused.code).toBe(1);
      expect(refused.err).toMatch(/403/);
      expect(await status('cli-gate-3')).toBe('paused');
    });
  });
  describe("a tenant's own rule (warden keys separation-of-duties)", () => {
    const RELAXED = 'sod-sandbox';
    async function warden(args: string[]) {
      let out = '';
      let err = '';
      const program = createProgram({
        environment: { env: { DATABASE_URL: api.database.url }, cwd: process.cwd() },
        io: { out: (t) => void (out += t), err: (t) => void (err += t) },
      });
      try {
        await program.parseAsync(['node', 'warden', 'keys', ...args]);
        return { code: 0, out, err };
      } catch (error) {
        return { code: exitCodeFor(error), out, err: err + (error instanceof Error ? error.message : '') };
      }
    }
    const chainOf = () =>
      api.db
        .selectFrom('task_audits')
        .select(['event_type', 'level', 'payload'])
        .where('tenant_id', '=', RELAXED)
        .where('task_id', '=', 'tenant:separation-of-duties')
        .orderBy('chain_seq')
        .execute();

    it('should be enforced by default and refuse a change without a reason or an operator', async () => {
      await api.createKey(RELAXED, ['tasks:read'], 'someone');
      expect(await warden(['separation-of-duties', RELAXED])).toMatchObject({
        code: 0,
        out: `separation of duties for ${RELAXED}: enforced\n`,
      });
      const noReason = await warden(['separation-of-duties', RELAXED, '--relax', '--by', 'ops']);
      expect(noReason.code).toBe(2);
      expect(noReason.err).toMatch(/--reason/);
      const noBy = await warden(['separation-of-duties', RELAXED, '--relax', '--reason', 'sandbox tenant']);
      expect(noBy.code).toBe(2);
      expect(noBy.err).toMatch(/--by/);
      expect(
        (await warden(['separation-of-duties', 'sod-nobody', '--relax', '--reason', 'x y z', '--by', 'ops']))
          .code,
      ).toBe(1);
      expect(await chainOf()).toEqual([]);
    });

    it('should let a relaxed tenant create a key that writes and approves, audited, and take it back when enforced again', async () => {
      const refused = await warden([
        'create',
        '--tenant',
        RELAXED,
        '--scopes',
        'events:write,tasks:approve',
        '--owner',
        'solo-dev',
        '--json',
      ]);
      expect(refused.code).toBe(2);
      expect(refused.err).toMatch(/separation of duties/);

      const relaxed = await warden([
        'separation-of-duties',
        RELAXED,
        '--relax',
        '--reason',
        'single-person sandbox',
        '--by',
        'ops@example.com',
      ]);
      expect(relaxed, relaxed.err).toMatchObject({ code: 0 });
      expect(relaxed.out).toMatch(/enforced → relaxed \(audited\)/);
      // Another tenant keeps the default.
      expect((await warden(['separation-of-duties', TENANT])).out).toMatch(/enforced/);

      const created = await warden([
        'create',
        '--tenant',
        RELAXED,
        '--scopes',
        'events:write,tasks:approve',
        '--owner',
        'solo-dev',
        '--json',
      ]);
      expect(created, created.err).toMatchObject({ code: 0 });
      const solo = JSON.parse(created.out).key as string;
      await api.db
        .insertInto('tasks')
        .values({ tenant_id: RELAXED, task_id: 'solo-1', status: 'paused', metadata: JSON.stringify({}) })
        .execute();
      await api.db
        .insertInto('task_gates')
        .values({
          tenant_id: RELAXED,
          task_id: 'solo-1',
          gate_id: 'g-solo-1',
          checkpoint: 'plan',
          reason: 'test',
        })
        .execute();
      const sent = await call(`${api.url}/v1/events`, {
        key: solo,
        body: event('solo-e1', { task_id: 'solo-2' }),
      });
      expect(sent.status).toBe(202);
      expect((await release(solo, 'solo-1', 'plan')).status).toBe(200);

      // Enforced again: the same stored key loses its approving scope at its next request, and still writes.
      const enforced = await warden([
        'separation-of-duties',
        RELAXED,
        '--enforce',
        '--reason',
        'sandbox over',
        '--by',
        'ops@example.com',
      ]);
      expect(enforced, enforced.err).toMatchObject({ code: 0 });
      await api.db
        .insertInto('task_gates')
        .values({
          tenant_id: RELAXED,
          task_id: 'solo-1',
          gate_id: 'g-solo-2',
          checkpoint: 'deploy',
          reason: 'test',
        })
        .execute();
      await api.db.updateTable('tasks').set({ status: 'paused' }).where('task_id', '=', 'solo-1').execute();
      const again = await release(solo, 'solo-1', 'deploy');
      expect(again.status).toBe(403);
      expect(again.body.error.message).toContain('"tasks:approve"');
      expect(
        (await call(`${api.url}/v1/events`, { key: solo, body: event('solo-e2', { task_id: 'solo-2' }) }))
          .status,
      ).toBe(202);

      // Both changes are rows of the tenant's hash chain, naming who and why; the chain verifies.
      expect(await chainOf()).toEqual([
        {
          event_type: 'SEPARATION_OF_DUTIES_RELAXED',
          level: 'warn',
          payload: {
            previous: 'enforced',
            rule: 'relaxed',
            by: 'ops@example.com',
            reason: 'single-person sandbox',
          },
        },
        {
          event_type: 'SEPARATION_OF_DUTIES_ENFORCED',
          level: 'info',
          payload: { previous: 'relaxed', rule: 'enforced', by: 'ops@example.com', reason: 'sandbox over' },
        },
      ]);
      expect((await verifyAuditChain(api.db, RELAXED)).problems).toEqual([]);
      // Setting the rule it has changes nothing and audits nothing.
      expect(
        (await warden(['separation-of-duties', RELAXED, '--enforce', '--reason', 'again', '--by', 'ops']))
          .out,
      ).toMatch(/already enforced/);
      expect(await chainOf()).toHaveLength(2);
    });
  });
});
