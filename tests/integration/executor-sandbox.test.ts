/**
 * The verification sandbox (docs/executor.md, "Verification sandbox"), attacked with real child processes: a
 * verification cannot read the executor's secrets (its environment, or /proc/<ppid>/environ), cannot write outside
 * the workspace or reach the network under bubblewrap, and its output is redacted. Then, through the API and the
 * executor: agent-written commands are refused and a change to what a verification runs needs a person.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestApi, type TestApi } from '../support/api.js';
import {
  change,
  startTestExecutor,
  submission,
  tempWorkspace,
  testPolicyFile,
  waitForChangeSet,
  type TempWorkspace,
  type TestExecutor,
} from '../support/executor.js';
import { probeBubblewrap } from '../../services/executor/src/sandbox/isolation.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HOST = fileURLToPath(new URL('../support/sandbox-host.ts', import.meta.url));
const SANDBOX_PATH = `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`;
const run = promisify(execFile);

/**
 * Looks everywhere a child could find the executor's secrets: its own environment, /proc/self and
 * /proc/<ppid>/environ, and every other /proc/<pid>/environ it can read. Prints what it found; exit 3 on a leak.
 */
const HUNT_SECRETS = `
const fs = require('fs');
const canary = process.argv[1];
const places = { env: JSON.stringify(process.env) };
for (const pid of ['self', String(process.ppid), ...fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p))]) {
  try { places['/proc/' + pid + '/environ'] = fs.readFileSync('/proc/' + pid + '/environ', 'utf8'); } catch {}
}
const leaks = Object.keys(places).filter((k) => places[k].includes(canary));
console.log(JSON.stringify({ ppid: process.ppid, read: Object.keys(places).length, leaks, env: process.env }));
process.exit(leaks.length > 0 ? 3 : 0);
`;

interface HostOutput {
  result: { ok: boolean; exitCode: number | null; output: string; error?: string };
  capabilities: { bubblewrap?: string; prlimit?: string; degraded: string[] };
  describe: string;
}

/** Runs one verification through a stand-in executor process whose real environment holds `secrets`. */
async function viaHost(
  input: {
    mode: 'auto' | 'bwrap' | 'none';
    runAs?: string;
    verification: unknown;
    raw?: boolean;
    workspaceRoot: string;
  },
  secrets: Record<string, string>,
): Promise<HostOutput> {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', HOST, JSON.stringify({ ...input, path: SANDBOX_PATH })],
    {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', LANG: 'C.UTF-8', ...secrets },
      maxBuffer: 4 * 1024 * 1024,
    },
  );
  return JSON.parse(stdout) as HostOutput;
}

const nodeScript = (script: string, ...args: string[]) => ['node', '-e', script, ...args];

describe('the verification sandbox', () => {
  let ws: TempWorkspace;
  let outside: string;
  const canary = `canary-${randomBytes(8).toString('hex')}`;
  const secrets = {
    DATABASE_URL: `postgres://warden:${canary}@db.internal:5432/warden`,
    REDIS_URL: `redis://:${canary}@redis.internal:6379`,
    WARDEN_AUDIT_KEY: canary,
  };

  beforeAll(async () => {
    ws = await tempWorkspace({ 'docs/page.md': 'v1\n' });
    outside = await mkdtemp(join(tmpdir(), 'warden-outside-'));
  });

  afterAll(async () => {
    await ws?.remove();
    if (outside) await rm(outside, { recursive: true, force: true });
  });

  it('should find a working bubblewrap on this machine (npm test installs it)', () => {
    expect(
      probeBubblewrap(),
      'bwrap is missing or cannot create namespaces here: `npm test` installs it (scripts/stack.mjs, ensureBwrap); ' +
        'or run `apt-get install bubblewrap`',
    ).toBeDefined();
  });

  it("should keep the executor's secrets from a verification: environment and /proc/<ppid>/environ", async () => {
    const out = await viaHost(
      { mode: 'bwrap', verification: { command: nodeScript(HUNT_SECRETS, canary) }, workspaceRoot: ws.root },
      secrets,
    );
    expect(out.capabilities.bubblewrap).toBeDefined();
    expect(out.result.output).not.toContain(canary);
    expect(out.result, out.result.output).toMatchObject({ ok: true, exitCode: 0 });
    const report = JSON.parse(out.result.output.trim().split('\n').at(-1)!) as {
      env: Record<string, string>;
      read: number;
    };
    // PWD is bubblewrap's (its --chdir): the workspace.
    expect(Object.keys(report.env).sort()).toEqual([
      'HOME',
      'LANG',
      'PATH',
      'PWD',
      'TMPDIR',
      'WARDEN_CHANGESET_ID',
      'WARDEN_WORKSPACE',
      'WARDEN_WORKSPACE_ROOT',
    ]);
    expect(report.env.PATH).toBe(SANDBOX_PATH);
    // It did look: its own environ and its parent's at least.
    expect(report.read).toBeGreaterThanOrEqual(3);
  });

  it('should keep the secrets out of the environment even when a verification lists them (the schema refuses that first)', async () => {
    const out = await viaHost(
      {
        mode: 'bwrap',
        raw: true,
        verification: {
          command: nodeScript('console.log(JSON.stringify(process.env))'),
          env: ['DATABASE_URL', 'WARDEN_AUDIT_KEY', 'PATH'],
          timeout_ms: 20_000,
          inputs: [],
          network: false,
          description: '',
        },
        workspaceRoot: ws.root,
      },
      secrets,
    );
    expect(out.result.ok, out.result.output).toBe(true);
    expect(out.result.output).not.toContain(canary);
  });

  it('should let a verification write in the workspace and nowhere else', async () => {
    const script = `
const fs = require('fs');
const tries = { workspace: 'docs/written.txt', outside: process.argv[1] + '/escape.txt', etc: '/etc/warden-escape', repo: process.argv[2] + '/escape.txt' };
const results = {};
for (const [name, path] of Object.entries(tries)) {
  try { fs.writeFileSync(path, 'x'); results[name] = 'written'; } catch (e) { results[name] = e.code; }
}
console.log(JSON.stringify(results));`;
    const out = await viaHost(
      {
        mode: 'bwrap',
        verification: { command: nodeScript(script, outside, REPO_ROOT) },
        workspaceRoot: ws.root,
      },
      secrets,
    );
    expect(out.result.ok, out.result.output).toBe(true);
    const results = JSON.parse(out.result.output.trim()) as Record<string, string>;
    expect(results.workspace).toBe('written');
    expect(results.outside).not.toBe('written');
    expect(results.etc).not.toBe('written');
    expect(results.repo).not.toBe('written');
    expect(await ws.read('docs/written.txt')).toBe('x');
    for (const path of [join(outside, 'escape.txt'), '/etc/warden-escape', join(REPO_ROOT, 'escape.txt')])
      await expect(stat(path), path).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('should give a verification no network unless it declares network: true', async () => {
    // Postgres listens on 127.0.0.1:5432 for the suite; the sandbox's loopback is its own.
    const script = `
const socket = require('net').connect(5432, '127.0.0.1');
socket.on('connect', () => { console.log('connected'); process.exit(0); });
socket.on('error', (e) => { console.log(e.code); process.exit(1); });`;
    const closed = await viaHost(
      {
        mode: 'bwrap',
        verification: { command: nodeScript(script), timeout_ms: 10_000 },
        workspaceRoot: ws.root,
      },
      secrets,
    );
    expect(closed.result.ok).toBe(false);
    expect(closed.result.output).not.toContain('connected');
    const open = await viaHost(
      {
        mode: 'bwrap',
        verification: { command: nodeScript(script), timeout_ms: 10_000, network: true },
        workspaceRoot: ws.root,
      },
      secrets,
    );
    expect(open.result.output.trim()).toBe('connected');
  });

  it('should redact secrets a verification prints', async () => {
    const script =
      'console.log("DATABASE_URL=postgres://app:hunter2@db/x token: abc123 api_key=zzz wdn_abcdefghijkl fine=1")';
    const out = await viaHost(
      { mode: 'bwrap', verification: { command: nodeScript(script) }, workspaceRoot: ws.root },
      secrets,
    );
    expect(out.result.output).not.toMatch(/hunter2|abc123|zzz|wdn_abcdefghijkl/);
    expect(out.result.output).toContain('fine=1');
    expect(out.result.output).toContain('[redacted]');
  });

  describe('without bubblewrap (EXECUTOR_SANDBOX=none): degraded', () => {
    it('should still keep the secrets out of the environment, and say it is degraded', async () => {
      const script = `process.exit(JSON.stringify(process.env).includes(process.argv[1]) ? 3 : 0)`;
      const out = await viaHost(
        { mode: 'none', verification: { command: nodeScript(script, canary) }, workspaceRoot: ws.root },
        secrets,
      );
      expect(out.result, out.result.output).toMatchObject({ ok: true });
      expect(out.capabilities.bubblewrap).toBeUndefined();
      expect(out.describe).toContain('degraded');
      expect(out.describe).toContain('bubblewrap disabled');
    });

    it.runIf(process.getuid?.() === 0)(
      'should keep /proc/<ppid>/environ out of reach too when it runs as another user (EXECUTOR_RUN_AS)',
      async () => {
        const shared = await tempWorkspace();
        try {
          await chmod(shared.root, 0o777);
          const out = await viaHost(
            {
              mode: 'none',
              runAs: '65534:65534',
              verification: { command: nodeScript(HUNT_SECRETS, canary) },
              workspaceRoot: shared.root,
            },
            secrets,
          );
          expect(out.result.output).not.toContain(canary);
          expect(out.result, out.result.output).toMatchObject({ ok: true, exitCode: 0 });
          expect(out.describe).not.toContain('run as root');
        } finally {
          await shared.remove();
        }
      },
    );
  });
});

describe('verifications through the API and the executor', () => {
  const TENANT = 'sandbox';
  let api: TestApi;
  let executor: TestExecutor;
  let ws: TempWorkspace;
  let writer: string;
  const canary = `canary-${randomBytes(8).toString('hex')}`;

  beforeAll(async () => {
    const policyFile = await testPolicyFile({
      'hunt-secrets': { command: nodeScript(HUNT_SECRETS, canary) },
    });
    api = await startTestApi({ WRITEGATE_POLICY_FILE: policyFile });
    ws = await tempWorkspace({ 'docs/page.md': 'v1\n', 'docs/Makefile': 'test:\n\ttrue\n' });
    executor = await startTestExecutor({
      databaseUrl: api.database.url,
      prefix: api.prefix,
      workspaces: { app: ws.root },
      // The in-process executor's secret, as its configuration reads it.
      env: { WRITEGATE_POLICY_FILE: policyFile, WARDEN_AUDIT_KEY: canary, EXECUTOR_COMMAND_ENV: 'LANG' },
    });
    writer = await api.createKey(TENANT, ['changesets:write']);
  });

  afterAll(async () => {
    await executor?.stop();
    await api?.stop();
    await ws?.remove();
  });

  it('should refuse a change set carrying its own command with a 400 naming the field', async () => {
    const body = submission({
      changesetId: 'argv-attack',
      workspace: 'app',
      changes: [change.update('docs/page.md', 'v1\n', 'v2\n')],
      plan: {
        verification_plan: {
          commands: [
            { command: 'node', args: ['-e', 'console.log(require("fs").readFileSync("/proc/1/environ"))'] },
          ],
        } as never,
      },
    });
    const response = await call(`${api.url}/v1/changesets`, { key: writer, body });
    expect(response.status).toBe(400);
    expect(JSON.stringify(response.body.error.details)).toContain('verification_plan');
    expect(response.body.error.details[0].message).toContain('agent-written commands are not run');
  });

  it('should ask for approval, never allow, a LOW docs change to a Makefile a verification runs', async () => {
    const response = await call(`${api.url}/v1/changesets`, {
      key: writer,
      body: submission({
        changesetId: 'makefile',
        workspace: 'app',
        changes: [change.update('docs/Makefile', 'test:\n\ttrue\n', 'test:\n\tcat /proc/1/environ\n')],
        plan: { verification_plan: { verifications: ['pass'] } },
      }),
    });
    expect(response.status).toBe(201);
    expect(response.body.verdict.verdict).toBe('NEED_APPROVAL');
    expect(response.body.verdict.reasons.map((r: { code: string }) => r.code)).toContain(
      'VERIFICATION_INPUT_CHANGED',
    );
  });

  it("should run a named verification that cannot find the executor's secret anywhere", async () => {
    const response = await call(`${api.url}/v1/changesets`, {
      key: writer,
      body: submission({
        changesetId: 'hunt',
        workspace: 'app',
        changes: [change.update('docs/page.md', 'v1\n', 'hunted\n')],
        plan: { verification_plan: { verifications: ['hunt-secrets'] } },
      }),
    });
    expect(response.body.verdict?.verdict, JSON.stringify(response.body)).toBe('ALLOW');
    const row = await waitForChangeSet(api.db, TENANT, 'hunt', ['completed', 'rolled_back', 'failed']);
    expect(row.status, row.error_message ?? '').toBe('completed');
    const view = await call(`${api.url}/v1/changesets/hunt`, { key: writer });
    expect(JSON.stringify(view.body)).not.toContain(canary);
  });
});
