/**
 * The five acceptance cases of the executor (docs/executor.md), end to end: submission through the real API, execution by the real
 * executor from the `changesets` queue, real files in a temp workspace, real Postgres and Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestApi, type TestApi } from '../support/api.js';
import {
  change,
  changeSetAuditTypes,
  changeSetSteps,
  enqueueChangeSet,
  forgeChangeSet,
  sha,
  startTestExecutor,
  submission,
  tempWorkspace,
  waitForChangeSet,
  type TempWorkspace,
  type TestExecutor,
  testPolicyFile,
} from '../support/executor.js';

const TENANT = 'acme';

describe('executor acceptance', () => {
  let api: TestApi;
  let executor: TestExecutor;
  let ws: TempWorkspace;
  let writer: string;
  let approver: string;

  beforeAll(async () => {
    api = await startTestApi({ WRITEGATE_POLICY_FILE: await testPolicyFile() });
    ws = await tempWorkspace({
      'docs/guide.md': 'guide v1\n',
      'docs/faq.md': 'faq v1\n',
      'docs/shared.md': 'shared v1\n',
      'docs/old.md': 'to be deleted\n',
      'docs/keep.md': 'keep\n',
      '.env': 'SECRET=1\n',
    });
    await ws.write('docs/script.md', 'mode 640\n', 0o640);
    executor = await startTestExecutor({
      databaseUrl: api.database.url,
      prefix: api.prefix,
      workspaces: { app: ws.root },
      env: { EXECUTOR_CONCURRENCY: '4' },
    });
    writer = await api.createKey(TENANT, ['changesets:write']);
    approver = await api.createKey(TENANT, ['changesets:approve']);
  });

  afterAll(async () => {
    await executor?.stop();
    await api?.stop();
    await ws?.remove();
  });

  describe('1. when two change sets for one workspace arrive at once', () => {
    it('should apply them one after the other, both correctly', async () => {
      const a = submission({
        changesetId: 'concurrent-a',
        workspace: 'app',
        changes: [
          change.update('docs/guide.md', 'guide v1\n', 'guide v2\n'),
          change.create('docs/a/new.md', 'from a\n'),
        ],
      });
      const b = submission({
        changesetId: 'concurrent-b',
        workspace: 'app',
        changes: [
          change.update('docs/faq.md', 'faq v1\n', 'faq v2\n'),
          change.create('docs/b/new.md', 'from b\n'),
        ],
      });
      const [ra, rb] = await Promise.all([
        call(`${api.url}/v1/changesets`, { key: writer, body: a }),
        call(`${api.url}/v1/changesets`, { key: writer, body: b }),
      ]);
      expect([ra.status, rb.status]).toEqual([201, 201]);
      const [rowA, rowB] = await Promise.all([
        waitForChangeSet(api.db, TENANT, 'concurrent-a', ['completed', 'failed', 'rolled_back']),
        waitForChangeSet(api.db, TENANT, 'concurrent-b', ['completed', 'failed', 'rolled_back']),
      ]);
      expect([rowA.status, rowB.status]).toEqual(['completed', 'completed']);
      expect(await ws.read('docs/guide.md')).toBe('guide v2\n');
      expect(await ws.read('docs/faq.md')).toBe('faq v2\n');
      expect(await ws.read('docs/a/new.md')).toBe('from a\n');
      expect(await ws.read('docs/b/new.md')).toBe('from b\n');
      // Serialized: each held the workspace under its own fencing token, and one finished before the other began.
      expect(rowA.fence_token).not.toBe(rowB.fence_token);
      const [first, second] = [rowA, rowB].sort((x, y) => Number(x.fence_token) - Number(y.fence_token));
      expect(first!.finished_at!.getTime()).toBeLessThanOrEqual(second!.started_at!.getTime());
    });

    it('should let only one of two change sets written against the same file win, and refuse the other untouched', async () => {
      const c = submission({
        changesetId: 'race-c',
        workspace: 'app',
        changes: [change.update('docs/shared.md', 'shared v1\n', 'shared by c\n')],
      });
      const d = submission({
        changesetId: 'race-d',
        workspace: 'app',
        changes: [change.update('docs/shared.md', 'shared v1\n', 'shared by d\n')],
      });
      await Promise.all([
        call(`${api.url}/v1/changesets`, { key: writer, body: c }),
        call(`${api.url}/v1/changesets`, { key: writer, body: d }),
      ]);
      const rows = await Promise.all(
        ['race-c', 'race-d'].map((id) =>
          waitForChangeSet(api.db, TENANT, id, ['completed', 'failed', 'rolled_back']),
        ),
      );
      const winner = rows.find((r) => r.status === 'completed')!;
      const loser = rows.find((r) => r.status !== 'completed')!;
      expect(winner).toBeDefined();
      expect(loser).toMatchObject({ status: 'failed', error_code: 'cas_mismatch' });
      expect(await ws.read('docs/shared.md')).toBe(
        winner.changeset_id === 'race-c' ? 'shared by c\n' : 'shared by d\n',
      );
    });
  });

  describe('2. when the same change set is submitted twice', () => {
    it("should answer the second with the first one's result and write the files once", async () => {
      const first = submission({
        changesetId: 'dup-1',
        planId: 'plan-dup',
        workspace: 'app',
        changes: [change.create('docs/dup.md', 'once\n')],
      });
      expect((await call(`${api.url}/v1/changesets`, { key: writer, body: first })).status).toBe(201);
      await waitForChangeSet(api.db, TENANT, 'dup-1', ['completed']);

      // The same POST again: the stored change set, not a second one.
      const retried = await call(`${api.url}/v1/changesets`, { key: writer, body: first });
      expect(retried.status).toBe(200);
      expect(retried.headers.get('idempotent-replayed')).toBe('true');
      expect(retried.body.status).toBe('completed');

      // The same plan and changes under another change-set id: replayed, never applied again.
      const second = { ...first, changeset: { ...first.changeset, changeset_id: 'dup-2' } };
      expect((await call(`${api.url}/v1/changesets`, { key: writer, body: second })).status).toBe(201);
      const row = await waitForChangeSet(api.db, TENANT, 'dup-2', ['completed', 'failed']);
      expect(row.status).toBe('completed');
      expect(row.result).toMatchObject({
        outcome: 'completed',
        replayed_from: 'dup-1',
        files: { created: 1, updated: 0, deleted: 0 },
      });
      expect(await changeSetSteps(api.db, TENANT, 'dup-2')).toEqual([
        'submitted:ok',
        'gated:ok',
        'idempotency:ok',
      ]);
      const journals = await api.db
        .selectFrom('changeset_journals')
        .select('changeset_id')
        .where('changeset_id', 'in', ['dup-1', 'dup-2'])
        .execute();
      expect(journals.map((j) => j.changeset_id)).toEqual(['dup-1']);
      expect(await ws.read('docs/dup.md')).toBe('once\n');
    });
  });

  describe('3. when verification fails (exit 1)', () => {
    it('should restore every file byte for byte and end rolled_back', async () => {
      const before = await ws.snapshot();
      const body = submission({
        changesetId: 'verify-fails',
        workspace: 'app',
        changes: [
          change.update('docs/keep.md', 'keep\n', 'changed\n'),
          change.update('docs/script.md', 'mode 640\n', 'changed too\n'),
          change.delete('docs/old.md', 'to be deleted\n'),
          change.create('docs/deep/er/new.md', 'new\n'),
        ],
        plan: {
          verification_plan: {
            description: 'must pass',
            verifications: ['pass', 'broken-build'],
          },
          // The delete makes it MEDIUM risk, which needs a health check to go through without approval.
          health_checks: [{ type: 'verification', name: 'noop', verification: 'pass' }],
        },
      });
      const submitted = await call(`${api.url}/v1/changesets`, { key: writer, body });
      expect(submitted.status).toBe(201);
      expect(submitted.body.verdict).toMatchObject({ verdict: 'ALLOW', risk_effective: 'MEDIUM' });
      const row = await waitForChangeSet(api.db, TENANT, 'verify-fails', [
        'completed',
        'rolled_back',
        'rollback_failed',
        'failed',
      ]);
      expect(row.status).toBe('rolled_back');
      expect(row.error_code).toBe('verification_failed');
      expect(await ws.snapshot()).toEqual(before);
      const view = await call(`${api.url}/v1/changesets/verify-fails`, { key: writer });
      expect(view.body.steps.map((s: { step: string; status: string }) => `${s.step}:${s.status}`)).toEqual([
        'submitted:ok',
        'gated:ok',
        'locked:ok',
        'validating:ok',
        'backing_up:ok',
        'applying:ok',
        'verifying:failed',
        'failed:failed',
        'rollback:ok',
      ]);
      const verifying = view.body.steps.find((s: { step: string }) => s.step === 'verifying');
      expect(verifying.detail.checks[1]).toMatchObject({
        ok: false,
        detail: expect.stringMatching(/^exit 1/),
      });
      expect(verifying.detail.checks[1].output).toContain('broken build');
      expect(await changeSetAuditTypes(api.db, TENANT, 'verify-fails')).toContain('CHANGESET_ROLLED_BACK');
    });
  });

  describe('4. when a change set is edited after its checksum', () => {
    it('should refuse it at submission and store nothing', async () => {
      const body = submission({
        changesetId: 'tampered-api',
        workspace: 'app',
        changes: [change.create('docs/t.md', 'original\n')],
      });
      body.changeset.changes[0]!.new_content = 'edited\n';
      delete body.changeset.changes[0]!.new_hash;
      const response = await call(`${api.url}/v1/changesets`, { key: writer, body });
      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe('checksum_mismatch');
      expect(response.body.error.message).toContain('checksum mismatch');
      expect(
        await api.db
          .selectFrom('changesets')
          .select('changeset_id')
          .where('changeset_id', '=', 'tampered-api')
          .execute(),
      ).toEqual([]);
      expect(await ws.exists('docs/t.md')).toBe(false);
    });

    it('should refuse it in the executor when it is edited in storage, writing nothing', async () => {
      const body = submission({
        changesetId: 'tampered-db',
        workspace: 'app',
        changes: [change.create('docs/t2.md', 'original\n')],
        plan: {
          risk_level_proposed: 'HIGH',
          health_checks: [{ type: 'verification', name: 'ok', verification: 'pass' }],
        },
      });
      const submitted = await call(`${api.url}/v1/changesets`, { key: writer, body });
      expect(submitted.body.verdict.verdict).toBe('NEED_APPROVAL');
      // Edited while it waited for approval: the checksum column still holds the old digest.
      const tampered = [{ ...body.changeset.changes[0], new_content: 'evil\n', new_hash: sha('evil\n') }];
      await api.db
        .updateTable('changesets')
        .set({ changes_json: JSON.stringify(tampered) })
        .where('changeset_id', '=', 'tampered-db')
        .execute();
      expect(
        (await call(`${api.url}/v1/changesets/tampered-db/approve`, { key: approver, body: {} })).status,
      ).toBe(200);
      const row = await waitForChangeSet(api.db, TENANT, 'tampered-db', [
        'failed',
        'completed',
        'rolled_back',
      ]);
      expect(row.status).toBe('failed');
      expect(row.error_code).toBe('checksum_mismatch');
      expect(row.error_message).toContain('checksum mismatch: change set tampered');
      expect(await ws.exists('docs/t2.md')).toBe(false);
    });
  });

  describe('5. when a change set touches .env', () => {
    it('should be denied by the WriteGate with a "forbidden" reason', async () => {
      const body = submission({
        changesetId: 'env-api',
        workspace: 'app',
        changes: [change.update('.env', 'SECRET=1\n', 'SECRET=stolen\n')],
      });
      const response = await call(`${api.url}/v1/changesets`, { key: writer, body });
      expect(response.status).toBe(201);
      expect(response.body.status).toBe('denied');
      expect(response.body.verdict.verdict).toBe('DENY');
      expect(
        response.body.verdict.reasons.find((r: { outcome: string }) => r.outcome === 'deny').message,
      ).toContain('forbidden');
      expect(await changeSetAuditTypes(api.db, TENANT, 'env-api')).toEqual([
        'CHANGESET_SUBMITTED',
        'CHANGESET_DENIED',
      ]);
    });

    it('should be refused by the executor too when handed one directly', async () => {
      const body = submission({
        changesetId: 'env-direct',
        workspace: 'app',
        changes: [change.update('.env', 'SECRET=1\n', 'SECRET=stolen\n')],
      });
      await forgeChangeSet(api.db, TENANT, body, { verdict: 'ALLOW' });
      await enqueueChangeSet(api.prefix, TENANT, 'env-direct');
      const row = await waitForChangeSet(api.db, TENANT, 'env-direct', [
        'failed',
        'completed',
        'rolled_back',
      ]);
      expect(row.status).toBe('failed');
      expect(row.error_code).toBe('writegate_denied');
      expect(row.error_message).toContain('forbidden');
      expect(await ws.read('.env')).toBe('SECRET=1\n');
      expect(await changeSetAuditTypes(api.db, TENANT, 'env-direct')).toContain('CHANGESET_REFUSED');
    });
  });
});
