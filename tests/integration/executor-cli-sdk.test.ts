/**
 * Change sets through the SDK (`WardenClient`) and the `warden changesets` commands, against the real API and
 * executor: submit, read, approve, reject, wait — and bad input answered as one readable line with the right exit
 * code, never a stack trace.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WardenApiError, WardenClient, sealChangeSet } from '@warden/client';
import { createProgram, describeError, exitCodeFor } from '@warden/cli';
import { startTestApi, type TestApi } from '../support/api.js';
import {
  change,
  startTestExecutor,
  submission,
  tempWorkspace,
  type TempWorkspace,
  type TestExecutor,
} from '../support/executor.js';

const TENANT = 'tools';
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('change sets through the SDK and the CLI', () => {
  let api: TestApi;
  let executor: TestExecutor;
  let ws: TempWorkspace;
  let dir: string;
  let writerKey: string;
  let approverKey: string;

  beforeAll(async () => {
    api = await startTestApi();
    ws = await tempWorkspace({ 'docs/sdk.md': 'sdk v1\n' });
    executor = await startTestExecutor({
      databaseUrl: api.database.url,
      prefix: api.prefix,
      workspaces: { app: ws.root },
    });
    writerKey = await api.createKey(TENANT, ['changesets:write']);
    approverKey = await api.createKey(TENANT, ['changesets:approve']);
    dir = await mkdtemp(join(tmpdir(), 'warden-cli-cs-'));
  });

  afterAll(async () => {
    await executor?.stop();
    await api?.stop();
    await ws?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('the SDK', () => {
    it('should submit a sealed change set, wait for it, and read its audit trail', async () => {
      const warden = new WardenClient({ baseUrl: api.url, apiKey: writerKey });
      const unsealed = submission({
        changesetId: 'sdk-1',
        workspace: 'app',
        changes: [
          { operation: 'update', path: 'docs/sdk.md', old_content: 'sdk v1\n', new_content: 'sdk v2\n' },
        ],
      });
      const { checksum: _drop, ...changeset } = unsealed.changeset;
      const view = await warden.submitChangeSet(sealChangeSet({ ...unsealed, changeset }));
      expect(view).toMatchObject({ changeset_id: 'sdk-1', status: 'pending', verdict: { verdict: 'ALLOW' } });
      const done = await warden.waitForChangeSet('sdk-1', { timeoutMs: 30_000, intervalMs: 50 });
      expect(done.status).toBe('completed');
      expect(await ws.read('docs/sdk.md')).toBe('sdk v2\n');
      const audits = await warden.listChangeSetAudits('sdk-1', { limit: 100 });
      expect(audits.items.map((a) => a.event_type)).toContain('CHANGESET_COMPLETED');
    });

    it('should approve with another key, and throw a WardenApiError for the submitter', async () => {
      const writer = new WardenClient({ baseUrl: api.url, apiKey: writerKey });
      const approver = new WardenClient({ baseUrl: api.url, apiKey: approverKey });
      const view = await writer.submitChangeSet(
        submission({
          changesetId: 'sdk-2',
          workspace: 'app',
          changes: [change.create('docs/sdk.schema.json', '{}\n')],
        }),
      );
      expect(view.approval.state).toBe('pending');
      const admin = new WardenClient({ baseUrl: api.url, apiKey: await api.createKey(TENANT, ['admin']) });
      await expect(admin.approveChangeSet('sdk-2', { checksum: '0'.repeat(64) })).rejects.toMatchObject({
        status: 400,
        code: 'checksum_mismatch',
      });
      const approved = await approver.approveChangeSet('sdk-2', { checksum: view.checksum, note: 'ok' });
      expect(approved.approval.state).toBe('approved');
      expect((await writer.waitForChangeSet('sdk-2', { timeoutMs: 30_000, intervalMs: 50 })).status).toBe(
        'completed',
      );
      const selfish = await writer.submitChangeSet(
        submission({
          changesetId: 'sdk-3',
          workspace: 'app',
          changes: [change.create('docs/sdk3.schema.json', '{}\n')],
        }),
      );
      const writerApprover = new WardenClient({
        baseUrl: api.url,
        apiKey: await api.createKey(TENANT, ['changesets:write', 'changesets:approve']),
      });
      const mine = await writerApprover.submitChangeSet(
        submission({
          changesetId: 'sdk-4',
          workspace: 'app',
          changes: [change.create('docs/sdk4.schema.json', '{}\n')],
        }),
      );
      const error = await writerApprover.approveChangeSet(mine.changeset_id).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WardenApiError);
      expect(error).toMatchObject({ status: 403, code: 'self_approval' });
      expect((await approver.rejectChangeSet(selfish.changeset_id, { reason: 'no' })).status).toBe(
        'rejected',
      );
    });
  });

  describe('the CLI', () => {
    async function warden(
      args: string[],
      key = writerKey,
    ): Promise<{ code: number; out: string; err: string }> {
      let out = '';
      let err = '';
      const program = createProgram({
        environment: { env: { WARDEN_API_URL: api.url, WARDEN_API_KEY: key }, cwd: dir },
        io: { out: (text) => (out += text), err: (text) => (err += text) },
      });
      try {
        await program.parseAsync(['node', 'warden', ...args]);
        return { code: 0, out, err };
      } catch (error) {
        return { code: exitCodeFor(error), out, err: err + describeError(error) };
      }
    }

    it('should submit a YAML file with --seal --wait and print the steps', async () => {
      await writeFile(
        join(dir, 'change.yaml'),
        [
          'plan:',
          '  plan_id: cli-plan-1',
          '  intent: add a page',
          '  risk_level_proposed: LOW',
          '  rollback_plan: restore it',
          '  verification_plan: look at it',
          '  created_by: cli-test',
          '  confidence: 0.9',
          'changeset:',
          '  changeset_id: cli-1',
          '  plan_id: cli-plan-1',
          '  workspace: app',
          '  generated_by: cli-test',
          '  changes:',
          '    - { operation: create, path: docs/cli.md, new_content: "from the cli\\n" }',
        ].join('\n'),
      );
      const result = await warden([
        'changesets',
        'submit',
        'change.yaml',
        '--seal',
        '--wait',
        '--timeout',
        '30',
      ]);
      expect(result.code, result.err).toBe(0);
      expect(result.out).toContain('change set cli-1');
      expect(result.out).toMatch(/status\s+completed/);
      expect(result.out).toMatch(/completed\s+ok/);
      expect(await ws.read('docs/cli.md')).toBe('from the cli\n');
      const shown = await warden(['changesets', 'get', 'cli-1', '--json']);
      expect(JSON.parse(shown.out)).toMatchObject({ changeset_id: 'cli-1', status: 'completed' });
    });

    it('should exit 1 when the WriteGate denies the change set, with the forbidden reason printed', async () => {
      await writeFile(
        join(dir, 'env.json'),
        JSON.stringify(
          submission({ changesetId: 'cli-env', workspace: 'app', changes: [change.create('.env', 'X=1\n')] }),
        ),
      );
      const result = await warden(['changesets', 'submit', 'env.json']);
      expect(result.code).toBe(1);
      expect(result.out).toMatch(/deny\s+FORBIDDEN_PATH/);
      expect(result.err).toContain('denied by the WriteGate');
    });

    it('should approve and reject by id, binding the approval to the checksum it read', async () => {
      await writeFile(
        join(dir, 'review.json'),
        JSON.stringify(
          submission({
            changesetId: 'cli-review',
            workspace: 'app',
            changes: [change.create('docs/cli.schema.json', '{}\n')],
          }),
        ),
      );
      await writeFile(
        join(dir, 'review2.json'),
        JSON.stringify(
          submission({
            changesetId: 'cli-review-2',
            workspace: 'app',
            changes: [change.create('docs/cli2.schema.json', '{}\n')],
          }),
        ),
      );
      expect((await warden(['changesets', 'submit', 'review.json'])).code).toBe(0);
      expect((await warden(['changesets', 'submit', 'review2.json'])).code).toBe(0);
      const selfApproval = await warden(['changesets', 'approve', 'cli-review']);
      expect(selfApproval.code).toBe(1);
      expect(selfApproval.err).toContain('403');
      const approved = await warden(
        ['changesets', 'approve', 'cli-review', '--note', 'fine', '--wait', '--timeout', '30'],
        approverKey,
      );
      expect(approved.code, approved.err).toBe(0);
      expect(approved.out).toMatch(/approval\s+approved by api_key:/);
      expect(approved.out).toMatch(/status\s+completed/);
      const rejected = await warden(
        ['changesets', 'reject', 'cli-review-2', '--reason', 'not needed'],
        approverKey,
      );
      expect(rejected.code).toBe(0);
      expect(rejected.out).toMatch(/status\s+rejected/);
    });

    it.each([
      [
        'a file that does not exist',
        ['changesets', 'submit', 'missing.json'],
        2,
        /cannot read .*missing\.json/,
      ],
      [
        'a change set without a checksum (no --seal)',
        ['changesets', 'submit', 'unsealed.json'],
        2,
        /changeset\.checksum is missing.*--seal/,
      ],
      [
        'YAML that does not parse',
        ['changesets', 'submit', 'broken.yaml'],
        2,
        /broken\.yaml: not valid YAML: line \d+/,
      ],
      [
        'a field of the wrong type',
        ['changesets', 'submit', 'wrong.json'],
        2,
        /wrong\.json: plan\.confidence/,
      ],
      ['an id with a slash', ['changesets', 'get', 'a/b'], 2, /invalid change set id "a\/b"/],
      [
        'an unknown change set',
        ['changesets', 'get', 'nope'],
        1,
        /404 not_found: change set "nope" not found/,
      ],
    ])('should answer %s with one line and exit %i', async (_name, args, code, message) => {
      const unsealed = submission({
        changesetId: 'cli-bad',
        workspace: 'app',
        changes: [change.create('docs/x.md', 'x\n')],
      });
      const { checksum: _checksum, ...withoutChecksum } = unsealed.changeset;
      await writeFile(
        join(dir, 'unsealed.json'),
        JSON.stringify({ ...unsealed, changeset: withoutChecksum }),
      );
      await writeFile(join(dir, 'broken.yaml'), 'plan: [unclosed\n');
      await writeFile(
        join(dir, 'wrong.json'),
        JSON.stringify({ ...unsealed, plan: { ...unsealed.plan, confidence: 'high' } }),
      );
      const result = await warden(args);
      expect(result.code).toBe(code);
      expect(result.err).toMatch(message);
      expect(result.err).not.toMatch(/\n\s+at /);
    });

    it('should say so in one line when the API is unreachable, and need a key', async () => {
      const noKey = createProgram({
        environment: { env: { WARDEN_API_URL: api.url }, cwd: dir },
        io: { out: () => {}, err: () => {} },
      });
      const missing = await noKey
        .parseAsync(['node', 'warden', 'changesets', 'get', 'x'])
        .catch((e: unknown) => e);
      expect(exitCodeFor(missing)).toBe(2);
      expect(describeError(missing)).toContain('--key or set WARDEN_API_KEY');

      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'packages/cli/src/main.ts',
          'changesets',
          'get',
          'x',
          '--url',
          'http://127.0.0.1:1',
          '--key',
          'wdn_x',
        ],
        { cwd: REPO_ROOT, env: process.env },
      );
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code).toBe(1);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toContain('cannot reach the Warden API at http://127.0.0.1:1');
    }, 60_000);
  });
});
