/**
 * `warden policy push | list | show | activate | rollback` as a person runs them against a real API: the diff
 * printed at push, separation of duties at activation (exit 1 naming why), rollback.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../support/api.js';
import { withEchoForbidden } from '../support/policies.js';
import { POLICY_FILE } from '../support/supervisor.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

function runWarden(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'packages/cli/src/main.ts', ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('warden policy push, activate and rollback', () => {
  let api: TestApi;
  let dir: string;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    api = await startTestApi();
    dir = await mkdtemp(join(tmpdir(), 'warden-policy-versions-'));
    alice = await api.createKey('acme', ['policies:write', 'policies:read'], 'alice');
    bob = await api.createKey('acme', ['policies:approve'], 'bob');
  });
  afterAll(async () => {
    await api.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const as = (key: string) => ({ WARDEN_API_URL: api.url, WARDEN_API_KEY: key });

  it('should push a file as a draft and print its diff', async () => {
    const file = join(dir, 'no-echo.yaml');
    await writeFile(file, withEchoForbidden(await readFile(POLICY_FILE, 'utf8')));
    const pushed = await runWarden(['policy', 'push', '-f', file, '--note', 'no echo'], as(alice));
    expect(pushed.code).toBe(0);
    expect(pushed.stdout).toContain(
      'supervisor policy version 2 (draft; decisions record file version "1@v2")',
    );
    expect(pushed.stdout).toContain('+      programs: [echo]');
    expect(pushed.stderr).toContain('warden policy activate 2');
  });

  it('should exit 2 naming the field when the file breaks the schema', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'thresholds:\n  error_rate: 7\n');
    const bad = await runWarden(['policy', 'push', '-f', file], as(alice));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('thresholds.error_rate');
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });

  it('should refuse the pusher activating its own draft, and activate with the second person', async () => {
    const own = await runWarden(['policy', 'activate', '2'], as(alice));
    expect(own.code).toBe(1);
    expect(own.stderr).toContain('403');
    const done = await runWarden(['policy', 'activate', '2', '--note', 'reviewed'], as(bob));
    expect(done.stderr).toBe('');
    expect(done.code).toBe(0);
    expect(done.stdout).toContain('supervisor policy version 2 (active;');
    expect(done.stdout).toContain('activated');
    const list = await runWarden(['policy', 'list'], as(alice));
    expect(list.stdout).toMatch(/\n\s+2 {2}active {4}/);
    expect(list.stdout).toMatch(/\n\s+1 {2}superseded/);
  });

  it('should roll back to version 1 with a reason', async () => {
    const back = await runWarden(['policy', 'rollback', '--to', '1', '--reason', 'echo needed'], as(bob));
    expect(back.code).toBe(0);
    expect(back.stdout).toContain('supervisor policy version 1 (active;');
    const bad = await runWarden(['policy', 'rollback', '--to', 'two', '--reason', 'x'], as(bob));
    expect(bad.code).toBe(2);
  });
});
