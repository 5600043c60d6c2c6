/**
 * Executor hardening (docs/executor.md, "Rollback and concurrent writers"): a rollback or a crash recovery undoes
 * only what the executor wrote and leaves a concurrent writer's change alone (listed as a conflict); temp files
 * are never written through something planted at their name; creating a file several new directories deep works.
 */
import { link, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestApi, type TestApi } from '../support/api.js';
import {
  change,
  changeSetSteps,
  startTestExecutor,
  submission,
  tempWorkspace,
  waitForChangeSet,
  type TempWorkspace,
  type TestExecutor,
} from '../support/executor.js';
import type { ExecutionPoint } from '../../services/executor/src/index.js';

const TENANT = 'harden';

type Hook = (point: ExecutionPoint, changesetId: string) => Promise<void> | void;

describe('executor hardening', () => {
  let api: TestApi;
  let ws: TempWorkspace;
  let outside: TempWorkspace;
  let executor: TestExecutor;
  let writer: string;
  const hooks = new Map<string, Hook>();

  const run = (id: string) => executor.service.runner()!.execute({ tenant_id: TENANT, changeset_id: id });
  let reviewer: string;
  const submit = async (body: unknown, verdict: 'ALLOW' | 'NEED_APPROVAL' = 'ALLOW') => {
    const response = await call(`${api.url}/v1/changesets`, { key: writer, body });
    expect(response.status).toBe(201);
    expect(response.body.verdict.verdict).toBe(verdict);
    return response.body as { changeset_id: string; checksum: string };
  };
  /** Submits a change set that needs a person (a delete) and approves it with a second key. */
  const submitApproved = async (body: unknown) => {
    const view = await submit(body, 'NEED_APPROVAL');
    const approved = await call(`${api.url}/v1/changesets/${view.changeset_id}/approve`, {
      key: reviewer,
      body: { checksum: view.checksum },
    });
    expect(approved.status).toBe(200);
  };
  const rollbackDetail = async (id: string) => {
    const step = await api.db
      .selectFrom('changeset_steps')
      .select(['status', 'detail', 'message'])
      .where('tenant_id', '=', TENANT)
      .where('changeset_id', '=', id)
      .where('step', '=', 'rollback')
      .executeTakeFirstOrThrow();
    return step as { status: string; message: string; detail: { conflicts: string[]; problems: string[] } };
  };
  const journalOf = async (id: string) =>
    (
      await api.db
        .selectFrom('changeset_journals')
        .select('journal_id')
        .where('tenant_id', '=', TENANT)
        .where('changeset_id', '=', id)
        .executeTakeFirstOrThrow()
    ).journal_id;

  beforeAll(async () => {
    api = await startTestApi();
    ws = await tempWorkspace({
      'docs/a.md': 'a v1\n',
      'docs/z.md': 'z v1\n',
      'docs/r1.md': 'r1 v1\n',
      'docs/r2.md': 'r2 v1\n',
      'docs/r3.md': 'r3 v1\n',
      'docs/h.md': 'h v1\n',
    });
    outside = await tempWorkspace({ 'victim.md': 'outside the workspace\n' }, 'warden-outside-');
    executor = await startTestExecutor({
      databaseUrl: api.database.url,
      prefix: api.prefix,
      workspaces: { app: ws.root },
      consume: false,
      // One file at a time, in journal order: which files were written before the failure is deterministic.
      env: { EXECUTOR_WRITE_CONCURRENCY: '1' },
      hooks: { at: (point, context) => hooks.get(context.changeset_id)?.(point, context.changeset_id) },
    });
    writer = await api.createKey(TENANT, ['changesets:write']);
    reviewer = await api.createKey(TENANT, ['changesets:approve']);
  });

  afterAll(async () => {
    await executor?.stop();
    await api?.stop();
    await ws?.remove();
    await outside?.remove();
  });

  it('should, after a compare-and-swap failure in its batch, write nothing and leave the concurrent change alone', async () => {
    await submit(
      submission({
        changesetId: 'cas-rollback',
        workspace: 'app',
        changes: [
          change.update('docs/a.md', 'a v1\n', 'a v2\n'),
          change.update('docs/z.md', 'z v1\n', 'z v2\n'),
          change.create('docs/d1/d2/d3/new.md', 'new\n'),
        ],
      }),
    );
    // Journal committed, nothing written yet: a person edits docs/z.md. The apply checks its batch (all three
    // files) before writing any, meets the edit (compare-and-swap) and rolls back having written nothing.
    // (A failure in a later batch, after earlier ones were written: executor-batched-apply.test.ts.)
    hooks.set('cas-rollback', async (point) => {
      if (point === 'backed_up') await ws.write('docs/z.md', 'z edited by a person\n');
    });
    expect(await run('cas-rollback')).toMatchObject({ changeset_status: 'rolled_back' });
    const row = await waitForChangeSet(api.db, TENANT, 'cas-rollback', ['rolled_back']);
    expect(row.error_code).toBe('cas_mismatch');
    expect(await ws.read('docs/a.md')).toBe('a v1\n');
    // Before: the rollback put the backup over the person's edit.
    expect(await ws.read('docs/z.md')).toBe('z edited by a person\n');
    expect(await ws.exists('docs/d1')).toBe(false);
    const rollback = await rollbackDetail('cas-rollback');
    expect(rollback.status).toBe('ok');
    expect(rollback.detail.conflicts).toEqual([expect.stringContaining('"docs/z.md"')]);
    expect(rollback.message).toContain('left as they are');
    const entries = await api.db
      .selectFrom('changeset_journal_entries')
      .select(['path', 'write_state'])
      .where('journal_id', '=', await journalOf('cas-rollback'))
      .orderBy('seq')
      .execute();
    expect(entries).toEqual([
      { path: 'docs/a.md', write_state: 'pending' },
      { path: 'docs/z.md', write_state: 'pending' },
      { path: 'docs/d1/d2/d3/new.md', write_state: 'pending' },
    ]);
  });

  it('should, recovering after a crash, restore only files that still hold what it wrote', async () => {
    await submitApproved(
      submission({
        changesetId: 'crash-conflict',
        workspace: 'app',
        changes: [
          change.update('docs/r1.md', 'r1 v1\n', 'r1 v2\n'),
          change.update('docs/r2.md', 'r2 v1\n', 'r2 v2\n'),
          change.delete('docs/r3.md', 'r3 v1\n'),
          change.create('docs/r4.md', 'r4 v2\n'),
        ],
      }),
    );
    // Everything applied; then, before the checks, other writers change three of the four files and the
    // executor "dies" (the hook throws: the journal stays in flight, as after a SIGKILL).
    hooks.set('crash-conflict', async (point) => {
      if (point !== 'applied') return;
      await ws.write('docs/r2.md', 'r2 by someone else\n');
      await ws.write('docs/r3.md', 'r3 recreated by someone else\n');
      await ws.write('docs/r4.md', 'r4 by someone else\n');
      throw new Error('simulated crash after the apply');
    });
    await expect(run('crash-conflict')).rejects.toThrow('simulated crash');
    expect(
      await executor.service.recovery()!.recoverAll({ onlyExpiredLeases: false, lockWaitMs: 10_000 }),
    ).toBe(1);
    const row = await waitForChangeSet(api.db, TENANT, 'crash-conflict', ['rolled_back']);
    expect(row.error_code).toBe('interrupted');
    expect(await ws.read('docs/r1.md')).toBe('r1 v1\n');
    expect(await ws.read('docs/r2.md')).toBe('r2 by someone else\n');
    expect(await ws.read('docs/r3.md')).toBe('r3 recreated by someone else\n');
    expect(await ws.read('docs/r4.md')).toBe('r4 by someone else\n');
    const rollback = await rollbackDetail('crash-conflict');
    expect(rollback.detail.conflicts).toHaveLength(3);
    expect(rollback.detail.conflicts.join('\n')).toMatch(
      /docs\/r2\.md[\s\S]*docs\/r3\.md|docs\/r3\.md[\s\S]*docs\/r2\.md/,
    );
    expect((await changeSetSteps(api.db, TENANT, 'crash-conflict')).slice(-2)).toEqual([
      'recovery:ok',
      'rollback:ok',
    ]);
  });

  it('should never write through a hard link planted at the temp file name', async () => {
    await submit(
      submission({
        changesetId: 'planted-temp',
        workspace: 'app',
        changes: [change.update('docs/h.md', 'h v1\n', 'pwned through the link\n')],
      }),
    );
    // Temp names are predictable (`.wd-<journal>-<seq>.warden-tmp`): once the journal exists, plant a hard link
    // to a file outside the workspace at the name the apply will use.
    hooks.set('planted-temp', async (point) => {
      if (point !== 'backed_up') return;
      const journalId = await journalOf('planted-temp');
      await link(join(outside.root, 'victim.md'), join(ws.root, `docs/.wd-${journalId}-0.warden-tmp`));
    });
    expect(await run('planted-temp')).toMatchObject({ changeset_status: 'rolled_back' });
    const row = await waitForChangeSet(api.db, TENANT, 'planted-temp', ['rolled_back']);
    expect(row.error_message).toContain('exists already');
    expect(await readFile(join(outside.root, 'victim.md'), 'utf8')).toBe('outside the workspace\n');
    expect(await ws.read('docs/h.md')).toBe('h v1\n');
  });

  it('should create a file four new directory levels deep, and a second one beside it', async () => {
    await submit(
      submission({
        changesetId: 'deep-create',
        workspace: 'app',
        changes: [
          change.create('docs/n1/n2/n3/n4/deep.md', 'deep\n'),
          change.create('docs/n1/n2/other/x/side.md', 'side\n'),
        ],
      }),
    );
    expect(await run('deep-create')).toMatchObject({ changeset_status: 'completed' });
    expect(await ws.read('docs/n1/n2/n3/n4/deep.md')).toBe('deep\n');
    expect(await ws.read('docs/n1/n2/other/x/side.md')).toBe('side\n');
  });

  it('should refuse to back up or replace a file that is a hard link to one outside', async () => {
    await link(join(outside.root, 'victim.md'), join(ws.root, 'docs/linked.md'));
    await submit(
      submission({
        changesetId: 'hard-linked',
        workspace: 'app',
        changes: [change.update('docs/linked.md', 'outside the workspace\n', 'changed\n')],
      }),
    );
    expect(await run('hard-linked')).toMatchObject({ changeset_status: 'failed' });
    const row = await waitForChangeSet(api.db, TENANT, 'hard-linked', ['failed']);
    expect(row).toMatchObject({ error_code: 'writegate_denied' });
    expect(row.error_message).toContain('hard link');
    expect(await readFile(join(outside.root, 'victim.md'), 'utf8')).toBe('outside the workspace\n');
  });
});
