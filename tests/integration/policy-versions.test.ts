import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '@warden/db';
import { call, startTestApi, type TestApi } from '../support/api.js';
import { withEchoForbidden } from '../support/policies.js';
import { POLICY_FILE } from '../support/supervisor.js';

describe('stored policy versions: push, activate, roll back', () => {
  let api: TestApi;
  let bootstrap: string;
  let alice: string; // pushes
  let alicesApprover: string; // another key of the same person
  let bob: string; // approves
  let reader: string;
  let agent: string;
  let otherTenant: string;

  beforeAll(async () => {
    api = await startTestApi();
    bootstrap = await readFile(POLICY_FILE, 'utf8');
    alice = await api.createKey('acme', ['policies:write'], 'alice');
    alicesApprover = await api.createKey('acme', ['policies:approve'], 'alice');
    bob = await api.createKey('acme', ['policies:approve'], 'bob');
    reader = await api.createKey('acme', ['policies:read'], 'carol');
    agent = await api.createKey('acme', ['events:write'], 'agent');
    otherTenant = await api.createKey('globex', ['policies:approve', 'policies:read'], 'dave');
  });
  afterAll(async () => {
    await api.stop();
  });

  const push = (key: string, body: unknown) => call(`${api.url}/v1/policies`, { key, body });
  const activate = (key: string, version: number, body: unknown = {}) =>
    call(`${api.url}/v1/policies/supervisor/versions/${version}/activate`, { key, body });

  describe('when a policy is pushed', () => {
    it('should refuse a source that breaks the schema, naming the field, and store nothing', async () => {
      const bad = await push(alice, { source: 'thresholds:\n  error_rate: 7\n' });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.body.error.details)).toContain('thresholds.error_rate');
      const yaml = await push(alice, { source: 'thresholds: [\n' });
      expect(yaml.status).toBe(400);
      expect(yaml.body.error.details[0].path).toMatch(/^source: line \d+/);
      const unknownField = await push(alice, { source: 'enforcment:\n  default: monitor\n' });
      expect(unknownField.status).toBe(400);
      const unknownKind = await push(alice, { kind: 'firewall', source: 'version: 1\n' });
      expect(unknownKind.status).toBe(400);
      // Text Postgres cannot store is a 400 naming the field, never a 500.
      const nul = await push(alice, { source: 'version: "1\u0000"\n' });
      expect(nul.status).toBe(400);
      expect(nul.body.error.details[0].path).toBe('source');
      const surrogate = await push(alice, { source: bootstrap, note: 'bad \ud800' });
      expect(surrogate.status).toBe(400);
      const huge = await push(alice, { source: `# ${'x'.repeat(300_000)}\n` });
      expect(huge.status).toBe(400);
      const list = await call(`${api.url}/v1/policies/supervisor/versions`, { key: reader });
      expect(list.body.items).toEqual([]);
    });

    it('should refuse keys without policies:write, agents included', async () => {
      expect((await push(agent, { source: bootstrap })).status).toBe(403);
      expect((await push(bob, { source: bootstrap })).status).toBe(403);
    });

    it('should store the bootstrap file as active version 1 and the push as a draft with its diff', async () => {
      const pushed = await push(alice, { source: withEchoForbidden(bootstrap), note: 'no echo' });
      expect(pushed.status).toBe(201);
      expect(pushed.body).toMatchObject({
        kind: 'supervisor',
        version: 2,
        status: 'draft',
        base_version: 1,
        pushed_by_owner: 'alice',
        note: 'no echo',
        activated_at: null,
      });
      expect(pushed.body.diff).toContain('--- version 1\n+++ version 2\n');
      expect(pushed.body.diff).toContain(
        '+    - description: echo is forbidden (test)\n+      programs: [echo]\n',
      );
      expect(
        pushed.body.diff.split('\n').filter((l: string) => l.startsWith('-') && !l.startsWith('---')),
      ).toEqual([]);

      const list = await call(`${api.url}/v1/policies/supervisor/versions`, { key: reader });
      expect(list.body.items.map((v: { version: number; status: string }) => [v.version, v.status])).toEqual([
        [2, 'draft'],
        [1, 'active'],
      ]);
      const one = await call(`${api.url}/v1/policies/supervisor/versions/1`, { key: reader });
      expect(one.body).toMatchObject({ status: 'active', pushed_by: 'bootstrap', source: bootstrap });
    });

    it('should refuse a push identical to the active version', async () => {
      const same = await push(alice, { source: bootstrap });
      expect(same.status).toBe(409);
    });
  });

  describe('when a draft is activated', () => {
    it('should refuse the pushing key, another key of the same owner, and a key without policies:approve', async () => {
      const self = await activate(alice, 2);
      expect(self.status).toBe(403);
      const sameOwner = await activate(alicesApprover, 2);
      expect(sameOwner.status).toBe(403);
      expect(sameOwner.body.error.message).toContain('separation of duties');
      expect((await activate(reader, 2)).status).toBe(403);
      expect((await activate(agent, 2)).status).toBe(403);
    });

    it("should not let another tenant's key see or activate it", async () => {
      expect((await activate(otherTenant, 2)).status).toBe(404);
      const read = await call(`${api.url}/v1/policies/supervisor/versions/2`, { key: otherTenant });
      expect(read.status).toBe(404);
    });

    it('should refuse bad version numbers with a 400 naming them', async () => {
      for (const bad of ['0', '-1', '1.5', 'abc', '99999999999'])
        expect((await activate(bob, bad as unknown as number)).status).toBe(400);
      expect((await activate(bob, 77)).status).toBe(404);
    });

    it("should activate with a second person's key, supersede version 1, and audit it in the hash chain", async () => {
      const done = await activate(bob, 2, { note: 'reviewed' });
      expect(done.status).toBe(200);
      expect(done.body).toMatchObject({ version: 2, status: 'active', activated_by_owner: 'bob' });
      const list = await call(`${api.url}/v1/policies/supervisor/versions`, { key: reader });
      expect(list.body.items.map((v: { status: string }) => v.status)).toEqual(['active', 'superseded']);
      expect((await activate(bob, 2)).status).toBe(409);

      const audits = await call(`${api.url}/v1/policies/supervisor/audits`, { key: reader });
      expect(audits.body.items.map((a: { event_type: string }) => a.event_type)).toEqual([
        'POLICY_ACTIVATED', // the bootstrap version
        'POLICY_PUSHED',
        'POLICY_ACTIVATED',
      ]);
      expect(audits.body.items[2].payload).toMatchObject({ version: 2, previous_version: 1, owner: 'bob' });
      const chain = await verifyAuditChain(api.db, 'acme');
      expect(chain.problems).toEqual([]);
    });

    it('should refuse a draft pushed against a version that is no longer active', async () => {
      const stale = await push(alice, { source: bootstrap + '\n# v3\n' });
      expect(stale.status).toBe(201);
      expect(stale.body.base_version).toBe(2);
      const other = await push(alice, { source: bootstrap + '\n# v4\n' });
      expect(other.body.version).toBe(4);
      expect((await activate(bob, 4)).status).toBe(200);
      // Version 3 was discarded when 4 became active: its diff was against 2.
      const refused = await activate(bob, 3);
      expect(refused.status).toBe(409);
    });
  });

  describe('when the active version is rolled back', () => {
    const rollback = (key: string, body: unknown) =>
      call(`${api.url}/v1/policies/supervisor/rollback`, { key, body });

    it('should go back to any version that was active once, and refuse one that never was', async () => {
      expect((await rollback(alice, { to_version: 1, reason: 'x' })).status).toBe(403);
      expect((await rollback(bob, { to_version: 3, reason: 'never active' })).status).toBe(409);
      expect((await rollback(bob, { to_version: 4, reason: 'already' })).status).toBe(409);
      expect((await rollback(bob, { to_version: 1 })).status).toBe(400);
      const back = await rollback(bob, { to_version: 1, reason: 'echo is needed after all' });
      expect(back.status).toBe(200);
      expect(back.body).toMatchObject({ version: 1, status: 'active' });
      const forward = await rollback(bob, { to_version: 2, reason: 'forward again' });
      expect(forward.body).toMatchObject({ version: 2, status: 'active' });
      const audits = await call(`${api.url}/v1/policies/supervisor/audits?limit=100`, { key: reader });
      const rollbacks = audits.body.items.filter(
        (a: { event_type: string }) => a.event_type === 'POLICY_ROLLED_BACK',
      );
      expect(
        rollbacks.map((a: { payload: { version: number; reason: string } }) => a.payload.version),
      ).toEqual([1, 2]);
    });
  });

  describe('the other kinds', () => {
    it('should validate a writegate or lead-rules source against its own schema', async () => {
      const writegate = await push(alice, { kind: 'writegate', source: 'no_such_field: 1\n' });
      expect(writegate.status).toBe(400);
      const lead = await push(alice, { kind: 'lead-rules', source: 'version: 9\n' });
      expect(lead.status).toBe(201);
      expect(lead.body).toMatchObject({ kind: 'lead-rules', version: 2, base_version: 1 });
    });
  });
});
