/**
 * The path-traversal corpus (docs/executor.md, WriteGate step 1): every hostile path is refused by the API's WriteGate
 * and — handed to the executor directly, past the API — by the executor, with nothing written outside the
 * workspace. Symlinks (a link pointing out, a directory swapped for a link between the check and the write) are
 * only visible on disk, so the executor alone catches them.
 */
import { mkdir, rename, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileChange } from '@warden/domain';
import { call, startTestApi, type TestApi } from '../support/api.js';
import {
  change,
  enqueueChangeSet,
  forgeChangeSet,
  sha,
  startTestExecutor,
  submission,
  tempWorkspace,
  waitForChangeSet,
  type TempWorkspace,
  type TestExecutor,
} from '../support/executor.js';

const TENANT = 'paths';

/** Hostile paths, each aiming at `outside/pwned.md` next to the workspace or at a file outside the tree. */
const CORPUS: Array<[name: string, path: string]> = [
  ['parent traversal', '../outside/pwned.md'],
  ['nested traversal', 'docs/../../outside/pwned.md'],
  ['absolute path', '/tmp/pwned.md'],
  ['windows traversal', '..\\outside\\pwned.md'],
  ['mixed separators', 'docs\\..\\..\\outside\\pwned.md'],
  ['percent-encoded dots', '%2e%2e/outside/pwned.md'],
  ['percent-encoded slash', '..%2foutside%2fpwned.md'],
  ['double-encoded', '%252e%252e/outside/pwned.md'],
  ['fullwidth dots and slash', '\uff0e\uff0e\uff0foutside\uff0fpwned.md'],
  ['division slash', '..\u2215outside\u2215pwned.md'],
  ['one-dot leaders', '\u2024\u2024/outside/pwned.md'],
  ['NUL truncation', 'docs/ok.md\u0000/../../outside/pwned.md'],
  ['NUL in a name', 'docs/pwned\u0000.md'],
  ['home directory', '~/pwned.md'],
  ['drive letter', 'C:/outside/pwned.md'],
  ['dot segment', './docs/../../outside/pwned.md'],
  ['empty segment', 'docs//pwned.md'],
  ['right-to-left override', 'docs/\u202edm.denwp'],
  ['trailing dot (Windows strips it)', '.env.'],
  ['case trick on a forbidden file', '.ENV'],
  ['case trick on .git', '.Git/config'],
];

describe('path safety in the API and the executor', () => {
  let api: TestApi;
  let executor: TestExecutor;
  let ws: TempWorkspace;
  let outside: TempWorkspace;
  let writer: string;

  beforeAll(async () => {
    api = await startTestApi();
    outside = await tempWorkspace({ 'victim.md': 'outside the workspace\n' }, 'warden-outside-');
    ws = await tempWorkspace({
      'docs/ok.md': 'ok\n',
      'docs/sub/a.md': 'a\n',
      '.env': 'SECRET=1\n',
      '.git/config': '[core]\n',
    });
    // The workspace sits in its own directory so `../outside` from it names nothing real but the corpus still aims out.
    executor = await startTestExecutor({
      databaseUrl: api.database.url,
      prefix: api.prefix,
      workspaces: { app: ws.root },
    });
    writer = await api.createKey(TENANT, ['changesets:write']);
  });

  afterAll(async () => {
    await executor?.stop();
    await api?.stop();
    await ws?.remove();
    await outside?.remove();
  });

  describe('when the API is sent a hostile path', () => {
    it.each(CORPUS)('should deny the %s', async (name, path) => {
      const id = `api-${CORPUS.findIndex(([n]) => n === name)}`;
      const response = await call(`${api.url}/v1/changesets`, {
        key: writer,
        body: submission({ changesetId: id, workspace: 'app', changes: [change.create(path, 'pwned\n')] }),
      });
      expect(response.status).toBe(201);
      expect(response.body).toMatchObject({ status: 'denied', verdict: { verdict: 'DENY' } });
      const deny = response.body.verdict.reasons.find((r: { outcome: string }) => r.outcome === 'deny');
      expect(['path_safety', 'forbidden_paths']).toContain(deny.step);
    });
  });

  describe('when the executor is handed a hostile path directly', () => {
    it.each(CORPUS)('should refuse the %s and write nothing anywhere', async (name, path) => {
      const id = `direct-${CORPUS.findIndex(([n]) => n === name)}`;
      const before = { inside: await ws.snapshot(), outside: await outside.snapshot() };
      await forgeChangeSet(
        api.db,
        TENANT,
        submission({ changesetId: id, workspace: 'app', changes: [change.create(path, 'pwned\n')] }),
      );
      await enqueueChangeSet(api.prefix, TENANT, id);
      const row = await waitForChangeSet(api.db, TENANT, id, ['failed', 'completed', 'rolled_back']);
      expect(row).toMatchObject({ status: 'failed', error_code: 'writegate_denied' });
      expect(await ws.snapshot()).toEqual(before.inside);
      expect(await outside.snapshot()).toEqual(before.outside);
    });
  });

  describe('when a path leads through a symlink', () => {
    it('should refuse a directory link pointing out of the workspace, even though the API allowed it', async () => {
      await symlink(outside.root, join(ws.root, 'docs/escape'));
      const before = await outside.snapshot();
      const body = submission({
        changesetId: 'symlink-dir',
        workspace: 'app',
        changes: [change.create('docs/escape/pwned.md', 'pwned\n')],
      });
      const response = await call(`${api.url}/v1/changesets`, { key: writer, body });
      // The API never sees the disk: the path is lexically fine, so the gate allows it.
      expect(response.body.verdict.verdict).toBe('ALLOW');
      const row = await waitForChangeSet(api.db, TENANT, 'symlink-dir', [
        'failed',
        'completed',
        'rolled_back',
      ]);
      expect(row).toMatchObject({ status: 'failed', error_code: 'writegate_denied' });
      expect(row.error_message).toContain('symbolic link');
      expect(await outside.snapshot()).toEqual(before);
    });

    it('should refuse updating a file that is a link to a file outside', async () => {
      await symlink(join(outside.root, 'victim.md'), join(ws.root, 'docs/victim.md'));
      const before = await outside.snapshot();
      const body = submission({
        changesetId: 'symlink-file',
        workspace: 'app',
        changes: [change.update('docs/victim.md', 'outside the workspace\n', 'pwned\n')],
      });
      await call(`${api.url}/v1/changesets`, { key: writer, body });
      const row = await waitForChangeSet(api.db, TENANT, 'symlink-file', [
        'failed',
        'completed',
        'rolled_back',
      ]);
      expect(row).toMatchObject({ status: 'failed', error_code: 'writegate_denied' });
      expect(await outside.snapshot()).toEqual(before);
      expect(await outside.read('victim.md')).toBe('outside the workspace\n');
    });
  });

  describe('when a directory is swapped for a symlink between the check and the write', () => {
    let swapping: TestExecutor;
    let swapWs: TempWorkspace;

    beforeAll(async () => {
      swapWs = await tempWorkspace({ 'docs/sub/a.md': 'a\n', 'docs/top.md': 'top\n' });
      swapping = await startTestExecutor({
        databaseUrl: api.database.url,
        prefix: `${api.prefix}-swap`,
        workspaces: { swap: swapWs.root },
        consume: false,
        hooks: {
          // After every check has passed, and before the first write: the attacker's move.
          async at(point, context) {
            if (point !== 'validated' || context.changeset_id !== 'swapped-dir') return;
            await rename(join(swapWs.root, 'docs/sub'), join(swapWs.root, 'docs/sub-moved'));
            await mkdir(join(outside.root, 'target'), { recursive: true });
            await symlink(join(outside.root, 'target'), join(swapWs.root, 'docs/sub'));
          },
        },
      });
    });

    afterAll(async () => {
      await swapping?.stop();
      await swapWs?.remove();
    });

    it('should write nothing through the link, restore what it wrote, and flag the workspace for a person', async () => {
      const changes: FileChange[] = [
        change.update('docs/top.md', 'top\n', 'top v2\n'),
        change.update('docs/sub/a.md', 'a\n', 'pwned\n'),
        change.create('docs/sub/new.md', 'pwned\n'),
      ];
      await forgeChangeSet(
        api.db,
        TENANT,
        submission({ changesetId: 'swapped-dir', workspace: 'swap', changes }),
      );
      const outcome = await swapping.service
        .runner()!
        .execute({ tenant_id: TENANT, changeset_id: 'swapped-dir' });
      // The executor restores its own writes but will not write through the link to put docs/sub/a.md back:
      // the tree is not what it was, and that is an incident for a person (rollback_failed), never a silent pass.
      expect(outcome).toMatchObject({ status: 'done', changeset_status: 'rollback_failed' });
      const row = await waitForChangeSet(api.db, TENANT, 'swapped-dir', ['rollback_failed']);
      expect(row.error_message).toMatch(/apply failed: "docs\/sub.*" is a symbolic link/);
      expect(row.error_message).toContain('the rollback could not restore');
      const steps = await api.db
        .selectFrom('changeset_steps')
        .select(['step', 'status'])
        .where('changeset_id', '=', 'swapped-dir')
        .orderBy('step_id')
        .execute();
      expect(steps.map((s) => `${s.step}:${s.status}`).slice(-3)).toEqual([
        'applying:failed',
        'failed:failed',
        'rollback:failed',
      ]);
      // Nothing landed outside, and the one file written before the link was met is restored.
      expect(await outside.snapshot()).toMatchObject({ target: expect.stringMatching(/^dir /) });
      expect(Object.keys(await outside.snapshot()).filter((k) => k.startsWith('target/'))).toEqual([]);
      expect(await swapWs.read('docs/top.md')).toBe('top\n');
      expect(await swapWs.read('docs/sub-moved/a.md')).toBe('a\n');
      expect(sha(await swapWs.read('docs/sub-moved/a.md'))).toBe(sha('a\n'));
    });
  });
});
