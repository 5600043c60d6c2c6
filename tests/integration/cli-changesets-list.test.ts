/**
 * `warden changesets list` against the real API: every change set, `--waiting` only those waiting for a person's
 * approval, and `--watch` printing the list again until Ctrl-C (the CLI run as its own process, as an operator
 * runs it, so the signal is real).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WardenClient } from '@warden/client';
import { createProgram, describeError, exitCodeFor } from '@warden/cli';
import { startTestApi, type TestApi } from '../support/api.js';
import { change, submission } from '../support/executor.js';

const TENANT = 'listing';
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Starting the CLI from TypeScript sources takes seconds on a busy machine. */
const PROCESS_TIMEOUT_MS = 60_000;

describe('warden changesets list', () => {
  let api: TestApi;
  let writerKey: string;
  let approverKey: string;
  let writer: WardenClient;
  /** The deadline of list-waiting's approval, as `changesets get` shows it. */
  let waitingExpiresAt: string | null;

  beforeAll(async () => {
    // No executor runs: an allowed change set stays queued (pending, no approval needed), which is what
    // --waiting must leave out.
    api = await startTestApi();
    writerKey = await api.createKey(TENANT, ['changesets:write']);
    approverKey = await api.createKey(TENANT, ['changesets:approve']);
    writer = new WardenClient({ baseUrl: api.url, apiKey: writerKey });
    const approver = new WardenClient({ baseUrl: api.url, apiKey: approverKey });
    const allowed = await writer.submitChangeSet(
      submission({
        changesetId: 'list-allowed',
        workspace: 'app',
        changes: [change.update('docs/list.md', 'v1\n', 'v2\n')],
      }),
    );
    expect(allowed.approval.state).toBe('not_required');
    const waiting = await writer.submitChangeSet(
      submission({
        changesetId: 'list-waiting',
        workspace: 'app',
        changes: [change.create('docs/list.schema.json', '{}\n')],
      }),
    );
    expect(waiting.approval.state).toBe('pending');
    waitingExpiresAt = waiting.approval.expires_at;
    await writer.submitChangeSet(
      submission({
        changesetId: 'list-rejected',
        workspace: 'app',
        changes: [change.create('docs/rejected.schema.json', '{}\n')],
      }),
    );
    await approver.rejectChangeSet('list-rejected', { reason: 'not now' });
  });

  afterAll(async () => {
    await api?.stop();
  });

  async function warden(
    args: string[],
    key = approverKey,
  ): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const program = createProgram({
      environment: { env: { WARDEN_API_URL: api.url, WARDEN_API_KEY: key }, cwd: REPO_ROOT },
      io: { out: (text) => (out += text), err: (text) => (err += text) },
    });
    try {
      await program.parseAsync(['node', 'warden', ...args]);
      return { code: 0, out, err };
    } catch (error) {
      return { code: exitCodeFor(error), out, err: err + describeError(error) };
    }
  }

  it("should list the tenant's change sets, newest first", async () => {
    const result = await warden(['changesets', 'list']);
    expect(result.code).toBe(0);
    const ids = result.out
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(/\s+/)[0]);
    expect(ids).toEqual(['list-rejected', 'list-waiting', 'list-allowed']);
    expect(result.out).toMatch(/^CHANGE SET\s+WORKSPACE\s+STATUS/);
  });

  describe('with --waiting', () => {
    it('should list only the change sets waiting for approval', async () => {
      const result = await warden(['changesets', 'list', '--waiting', '--json']);
      expect(result.code).toBe(0);
      const page = JSON.parse(result.out) as {
        items: { changeset_id: string; approval_state: string; approval_expires_at: string | null }[];
      };
      expect(page.items.map((c) => c.changeset_id)).toEqual(['list-waiting']);
      expect(page.items[0]).toMatchObject({
        approval_state: 'pending',
        approval_expires_at: waitingExpiresAt,
      });
      const table = await warden(['changesets', 'list', '--waiting']);
      expect(table.out).toMatch(/APPROVAL EXPIRES\n/);
      expect(table.out).toContain(waitingExpiresAt === null ? 'never' : waitingExpiresAt.slice(0, 19));
    });

    it('should be answered by GET /v1/changesets?approval=pending, which refuses an unknown state with 400', async () => {
      const headers = { authorization: `Bearer ${approverKey}` };
      const pending = await fetch(`${api.url}/v1/changesets?approval=pending`, { headers });
      expect(((await pending.json()) as { items: { changeset_id: string }[] }).items).toEqual([
        expect.objectContaining({ changeset_id: 'list-waiting' }),
      ]);
      const bad = await fetch(`${api.url}/v1/changesets?approval=maybe`, { headers });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(await bad.json())).toContain('"approval"');
    });

    it("should say so when nothing waits, for another tenant's key", async () => {
      const other = await api.createKey('listing-other', ['changesets:approve']);
      const result = await warden(['changesets', 'list', '--waiting'], other);
      expect(result).toMatchObject({ code: 0, out: 'no change sets wait for approval\n' });
    });
  });

  it('should refuse a bad --status, --limit or --interval with exit 2, naming the flag', async () => {
    const [status, limit, interval, lonely] = await Promise.all([
      warden(['changesets', 'list', '--status', 'sleeping']),
      warden(['changesets', 'list', '--limit', '0']),
      warden(['changesets', 'list', '--watch', '--interval', 'soon']),
      warden(['changesets', 'list', '--interval', '5']),
    ]);
    expect(status.code).toBe(2);
    expect(status.err).toContain('--status');
    expect(limit.code).toBe(2);
    expect(limit.err).toContain('--limit');
    expect(interval.code).toBe(2);
    expect(interval.err).toContain('--interval');
    expect(lonely.code).toBe(2);
    expect(lonely.err).toContain('--watch');
  });

  it(
    'should print the list again with --watch until Ctrl-C, showing a change set submitted meanwhile',
    async () => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'packages/cli/src/main.ts',
          'changesets',
          'list',
          '--waiting',
          '--watch',
          '--interval',
          '0.2',
        ],
        {
          cwd: REPO_ROOT,
          env: { ...process.env, WARDEN_API_URL: api.url, WARDEN_API_KEY: approverKey },
        },
      );
      let stdout = '';
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      const refreshes = () => stdout.split(/^--- /m).slice(1);
      let submitted = false;
      await new Promise<void>((resolve, reject) => {
        child.on('error', reject);
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          // Once a refresh is printed, submit a second waiting change set; stop once a refresh shows it.
          if (!submitted && refreshes().length >= 1) {
            submitted = true;
            writer
              .submitChangeSet(
                submission({
                  changesetId: 'list-waiting-2',
                  workspace: 'app',
                  changes: [change.create('docs/second.schema.json', '{}\n')],
                }),
              )
              .catch(reject);
          }
          if (refreshes().some((refresh) => refresh.includes('list-waiting-2'))) resolve();
        });
      });
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(stderr).toBe('');
      const all = refreshes();
      expect(all.length).toBeGreaterThanOrEqual(2);
      // Not a terminal: each refresh appended under its timestamp, no screen clearing.
      expect(stdout).not.toContain('\x1b[2J');
      expect(all[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z\n/);
      expect(all[0]).toContain('list-waiting');
      expect(all[0]).not.toContain('list-waiting-2');
      for (const refresh of all) expect(refresh).not.toContain('list-allowed');
    },
    PROCESS_TIMEOUT_MS,
  );
});
