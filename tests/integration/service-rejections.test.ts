/**
 * A rejection nobody handled, in a service run through `runMain`: when it is Postgres or Redis being away for a
 * moment the service logs it and carries on (a restart of a dependency must never end a process); when it is
 * anything else it is a bug, logged as fatal, and the process exits 1 as Node would.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

async function runFixture(rejection: 'dependency' | 'bug'): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/support/rejecting-service.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, REJECTION: rejection },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, output };
}

describe('a rejection nobody handled in a running service', () => {
  it('should be logged and ridden out when a dependency is unavailable', async () => {
    const { code, output } = await runFixture('dependency');
    expect(output).toContain('still running');
    expect(output).toMatch(/"action":"unhandled_rejection","status":"transient"/);
    expect(code).toBe(0);
  });

  it('should end the process with exit 1 and a fatal line when it is a bug', async () => {
    const { code, output } = await runFixture('bug');
    expect(output).not.toContain('still running');
    expect(output).toMatch(/"level":"fatal".*"action":"unhandled_rejection","status":"error"/);
    expect(code).toBe(1);
  });
});
