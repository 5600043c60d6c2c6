/**
 * Approval (docs/executor.md): a change set that needs approval waits for a second person; the submitter cannot approve
 * it; the approval binds to the checksum; rejection is final; tampering after approval is refused; every decision
 * is audited in the tenant's hash chain.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '@warden/db';
import { computeChangeSetChecksum, type FileChange } from '@warden/domain';
import { call, startTestApi, type TestApi } from '../support/api.js';
import {
  change,
  changeSetAuditTypes,
  changeSetSteps,
  sha,
  startTestExecutor,
  submission,
  tempWorkspace,
  waitForChangeSet,
  type TempWorkspace,
  type TestExecutor,
} from '../support/executor.js';

const TENANT = 'approvals';
/** Touches an always-review path, so the WriteGate asks for a person. */
const reviewed = (id: string, content = `${id}\n`) =>
  submission({
    changesetId: id,
    workspace: 'app',
    changes: [change.create(`docs/${id}.schema.json`, content)],
  });

describe('change-set approval', () => {
  let api: TestApi;
  let executor: TestExecutor;
  let ws: TempWorkspace;
  let alice: string; // writes and approves
  let bob: string; // approves
  let carol: string; // writes only
  let outsider: string; // another tenant

  beforeAll(async () => {
    api = await startTestApi();
    ws = await tempWorkspace({ 'docs/readme.md': 'readme\n' });
    // Driven by hand (consume: false): a test decides when the executor looks at the queue's work.
    executor = await startTestExecutor({
      databaseUrl: api.database.url,
      prefix: api.prefix,
      workspaces: { app: ws.root },
      consume: false,
    });
    alice = await api.createKey(TENANT, ['changesets:write', 'changesets:approve']);
    bob = await api.createKey(TENANT, ['changesets:approve']);
    carol = await api.createKey(TENANT, ['changesets:write']);
    outsider = await api.createKey('other-tenant', ['admin']);
  });

  afterAll(async () => {
    await executor?.stop();
    await api?.stop();
    await ws?.remove();
  });

  const execute = (id: string) => executor.service.runner()!.execute({ tenant_id: TENANT, changeset_id: id });
  const submit = async (key: string, body: unknown) => {
    const response = await call(`${api.url}/v1/changesets`, { key, body });
    expect(response.status).toBe(201);
    return response.body;
  };

  it('should wait for approval and not run before it', async () => {
    const view = await submit(alice, reviewed('waits'));
    expect(view).toMatchObject({
      status: 'pending',
      verdict: { verdict: 'NEED_APPROVAL' },
      approval: { state: 'pending' },
    });
    expect(view.verdict.reasons.find((r: { code: string }) => r.code === 'ALWAYS_REVIEW')).toBeDefined();
    expect(await execute('waits')).toMatchObject({ status: 'skipped' });
    expect(await ws.exists('docs/waits.schema.json')).toBe(false);
  });

  it('should refuse approval by the submitter, and audit the attempt', async () => {
    await submit(alice, reviewed('self'));
    const response = await call(`${api.url}/v1/changesets/self/approve`, { key: alice, body: {} });
    expect(response.status).toBe(403);
    expect(response.body.error.code).toBe('self_approval');
    expect((await call(`${api.url}/v1/changesets/self`, { key: alice })).body.approval.state).toBe('pending');
    expect(await changeSetAuditTypes(api.db, TENANT, 'self')).toContain('CHANGESET_APPROVAL_REFUSED');
  });

  it('should refuse approval without the changesets:approve scope', async () => {
    await submit(alice, reviewed('scope'));
    const response = await call(`${api.url}/v1/changesets/scope/approve`, { key: carol, body: {} });
    expect(response.status).toBe(403);
    expect(response.body.error.code).toBe('forbidden');
  });

  it('should refuse an approval naming another checksum than the change set has', async () => {
    const view = await submit(alice, reviewed('wrong-sum'));
    const response = await call(`${api.url}/v1/changesets/wrong-sum/approve`, {
      key: bob,
      body: { checksum: sha('something else') },
    });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('checksum_mismatch');
    expect(response.body.error.message).toContain(view.checksum);
  });

  it('should run once another person approves it, bound to its checksum', async () => {
    const view = await submit(alice, reviewed('approved'));
    const approved = await call(`${api.url}/v1/changesets/approved/approve`, {
      key: bob,
      body: { checksum: view.checksum, note: 'looked fine' },
    });
    expect(approved.status).toBe(200);
    expect(approved.body.approval).toMatchObject({
      state: 'approved',
      checksum: view.checksum,
      note: 'looked fine',
    });
    expect(approved.body.approval.decided_by).toMatch(/^api_key:/);
    // The same approval again is answered, not refused (a retried request).
    const again = await call(`${api.url}/v1/changesets/approved/approve`, {
      key: bob,
      body: { checksum: view.checksum },
    });
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await execute('approved')).toMatchObject({ status: 'done', changeset_status: 'completed' });
    expect(await ws.read('docs/approved.schema.json')).toBe('approved\n');
    expect(await changeSetSteps(api.db, TENANT, 'approved')).toEqual([
      'submitted:ok',
      'gated:ok',
      'approved:ok',
      'locked:ok',
      'validating:ok',
      'backing_up:ok',
      'applying:ok',
      'verifying:skipped',
      'health_checking:skipped',
      'completed:ok',
    ]);
    // One audit row per step, in the chain in step order — also for steps recorded together in one transaction
    // (validation with the journal; checks that ran nothing with the completion).
    expect(await changeSetAuditTypes(api.db, TENANT, 'approved')).toEqual([
      'CHANGESET_SUBMITTED',
      'CHANGESET_APPROVAL_REQUIRED',
      'CHANGESET_APPROVED',
      'CHANGESET_EXECUTION_STARTED',
      'CHANGESET_VALIDATED',
      'CHANGESET_BACKED_UP',
      'CHANGESET_APPLIED',
      'CHANGESET_VERIFIED',
      'CHANGESET_HEALTH_CHECKED',
      'CHANGESET_COMPLETED',
    ]);
  });

  it('should refuse a change set tampered with after its approval, writing nothing', async () => {
    const view = await submit(alice, reviewed('tamper-after'));
    await call(`${api.url}/v1/changesets/tamper-after/approve`, {
      key: bob,
      body: { checksum: view.checksum },
    });
    // A sophisticated tamper: new content and a checksum column that matches it. The approval still names the old one.
    const evil: FileChange[] = [
      {
        operation: 'create',
        path: 'docs/tamper-after.schema.json',
        new_content: 'evil\n',
        new_hash: sha('evil\n'),
      },
    ];
    await api.db
      .updateTable('changesets')
      .set({ changes_json: JSON.stringify(evil), checksum: computeChangeSetChecksum(evil) })
      .where('changeset_id', '=', 'tamper-after')
      .execute();
    expect(await execute('tamper-after')).toMatchObject({ status: 'done', changeset_status: 'failed' });
    const row = await waitForChangeSet(api.db, TENANT, 'tamper-after', ['failed']);
    expect(row.error_code).toBe('checksum_mismatch');
    expect(row.error_message).toContain('tampered after approval');
    expect(await ws.exists('docs/tamper-after.schema.json')).toBe(false);
  });

  it('should make a rejection final', async () => {
    await submit(carol, reviewed('rejected'));
    const rejected = await call(`${api.url}/v1/changesets/rejected/reject`, {
      key: bob,
      body: { reason: 'not now' },
    });
    expect(rejected.status).toBe(200);
    expect(rejected.body).toMatchObject({
      status: 'rejected',
      approval: { state: 'rejected', note: 'not now' },
    });
    const approve = await call(`${api.url}/v1/changesets/rejected/approve`, { key: alice, body: {} });
    expect(approve.status).toBe(409);
    expect(approve.body.error.code).toBe('invalid_state');
    expect(await execute('rejected')).toMatchObject({ status: 'done', changeset_status: 'rejected' });
    expect(await ws.exists('docs/rejected.schema.json')).toBe(false);
    expect(await changeSetAuditTypes(api.db, TENANT, 'rejected')).toEqual([
      'CHANGESET_SUBMITTED',
      'CHANGESET_APPROVAL_REQUIRED',
      'CHANGESET_REJECTED',
    ]);
  });

  it('should refuse to approve what needs no approval or was denied', async () => {
    await submit(
      carol,
      submission({
        changesetId: 'allowed',
        workspace: 'app',
        changes: [change.create('docs/allowed.md', 'x\n')],
      }),
    );
    await submit(
      carol,
      submission({ changesetId: 'denied', workspace: 'app', changes: [change.create('.env', 'x\n')] }),
    );
    for (const id of ['allowed', 'denied']) {
      const response = await call(`${api.url}/v1/changesets/${id}/approve`, { key: bob, body: {} });
      expect(response.status, id).toBe(409);
      expect(response.body.error.code).toBe('invalid_state');
    }
  });

  it("should not show or approve another tenant's change set", async () => {
    await submit(alice, reviewed('private'));
    expect((await call(`${api.url}/v1/changesets/private`, { key: outsider })).status).toBe(404);
    expect((await call(`${api.url}/v1/changesets/private/approve`, { key: outsider, body: {} })).status).toBe(
      404,
    );
    expect((await call(`${api.url}/v1/changesets/private/audits`, { key: outsider })).status).toBe(404);
  });

  it("should list and page the tenant's change sets, and answer bad input with 400 naming the field", async () => {
    const page = await call(`${api.url}/v1/changesets?limit=2`, { key: bob });
    expect(page.status).toBe(200);
    expect(page.body.items).toHaveLength(2);
    const next = await call(`${api.url}/v1/changesets?limit=2&cursor=${page.body.next_cursor}`, { key: bob });
    expect(next.body.items[0].changeset_id).not.toBe(page.body.items[0].changeset_id);
    const bad = await call(`${api.url}/v1/changesets`, {
      key: alice,
      body: { plan: {}, changeset: { changes: [] } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d: { path: string }) => d.path)).toContain('plan.plan_id');
    expect(JSON.stringify(bad.body)).not.toMatch(/\n\s+at /);
  });

  it("should keep the tenant's audit hash chain intact through all of it", async () => {
    const chain = await verifyAuditChain(api.db, TENANT);
    expect(chain.broken).toBeUndefined();
    expect(chain.rows).toBeGreaterThan(20);
  });
});
