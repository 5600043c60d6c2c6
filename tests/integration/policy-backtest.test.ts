/**
 * A backtest end to end: events decided by the supervisor under the shipped policy are archived; a candidate
 * policy that also forbids `echo` is replayed over them with `warden policy test --since`. The expected matrix
 * is computed here from how the events were made, not by the backtest code.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@warden/testing';
import { withEchoForbidden } from '../support/policies.js';
import { createTestProcessor, POLICY_FILE, taskEvent } from '../support/supervisor.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const TENANT = 'backtest-co';

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

/** Each task: a TASK_CREATED running `command`, then `steps` quiet TASK_STEP_COMPLETED events. */
const SCRIPT = [
  { kind: 'echo', command: 'echo hello', tasks: 7, steps: 2 }, // ALLOW, ALLOW, ALLOW → BLOCK ×3 (blocked task)
  { kind: 'ls', command: 'ls -la', tasks: 11, steps: 1 }, // ALLOW, ALLOW → unchanged
  { kind: 'sudo', command: 'sudo reboot', tasks: 3, steps: 1 }, // BLOCK, BLOCK → unchanged
] as const;

describe('warden policy test --since (backtest)', () => {
  let database: TestDatabase;
  let dir: string;
  let candidate: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'warden-backtest-'));
    candidate = join(dir, 'candidate.yaml');
    await writeFile(candidate, withEchoForbidden(await readFile(POLICY_FILE, 'utf8')));
    const processor = await createTestProcessor(database.db);
    for (const { kind, command, tasks, steps } of SCRIPT)
      for (let t = 0; t < tasks; t++) {
        const taskId = `${kind}-${t}`;
        const events = [
          taskEvent(TENANT, `${taskId}-created`, {
            task_id: taskId,
            event_type: 'TASK_CREATED',
            payload: { agent_spec: { name: 'a', capabilities: [] }, command_spec: { name: 'c', command } },
          }),
          ...Array.from({ length: steps }, (_, s) =>
            taskEvent(TENANT, `${taskId}-step-${s}`, { task_id: taskId, event_type: 'TASK_STEP_COMPLETED' }),
          ),
        ];
        // One event at a time, as they would arrive.
        for (const event of events) await processor.processEvents([event]);
      }
  });
  afterAll(async () => {
    await database?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const env = () => ({ DATABASE_URL: database.url });

  it('should report the transition matrix, findings and tasks blocked earlier', async () => {
    const result = await runWarden(['policy', 'test', '-f', candidate, '--since', '1h', '--json'], env());
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const { report } = JSON.parse(result.stdout);

    // Expected, from the script alone.
    const expected = new Map<string, number>();
    const add = (from: string, to: string, n: number) =>
      expected.set(`${from}->${to}`, (expected.get(`${from}->${to}`) ?? 0) + n);
    for (const { kind, tasks, steps } of SCRIPT) {
      if (kind === 'echo') add('ALLOW', 'BLOCK', tasks * (1 + steps));
      if (kind === 'ls') add('ALLOW', 'ALLOW', tasks * (1 + steps));
      if (kind === 'sudo') add('BLOCK', 'BLOCK', tasks * (1 + steps));
    }
    const total = [...expected.values()].reduce((a, b) => a + b, 0);
    const actual = new Map(
      report.matrix.map((c: { recorded: string; candidate: string; count: number }) => [
        `${c.recorded}->${c.candidate}`,
        c.count,
      ]),
    );
    expect(actual).toEqual(expected);
    expect(report.events).toBe(total);
    expect(report.tasks).toBe(SCRIPT.reduce((n, s) => n + s.tasks, 0));
    expect(report.changed).toBe(expected.get('ALLOW->BLOCK'));
    expect(report.findings_gained).toEqual({ REDLINE_FORBIDDEN_COMMAND: SCRIPT[0].tasks });
    expect(report.findings_lost).toEqual({});
    expect(report.tasks_blocked_earlier_count).toBe(SCRIPT[0].tasks);
    expect(report.tasks_blocked_later_count).toBe(0);
    const cell = report.matrix.find(
      (c: { recorded: string; candidate: string }) => c.recorded === 'ALLOW' && c.candidate === 'BLOCK',
    );
    expect(cell.samples.length).toBe(5);
    expect(cell.samples[0].task_id).toMatch(/^echo-/);
    expect(cell.rate).toBeCloseTo(expected.get('ALLOW->BLOCK')! / total, 10);
  }, 60_000);

  it('should exit 1 naming a broken --fail-on rule, and print the summary table', async () => {
    const result = await runWarden(
      [
        'policy',
        'test',
        '-f',
        candidate,
        '--since',
        '1h',
        '--fail-on',
        'ALLOW->BLOCK>0.5%',
        '--fail-on',
        'PAUSE->ALLOW>0',
      ],
      env(),
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/ALLOW → BLOCK\s+21\s+42\.86%/);
    expect(result.stdout).toContain('✗ --fail-on ALLOW->BLOCK>0.5%: measured 42.857% (21 of 49)');
    expect(result.stdout).not.toContain('PAUSE->ALLOW');
    expect(result.stderr).toContain('1 --fail-on rule(s) broken');
  }, 60_000);

  it('should replay only the tenant asked for, and refuse bad input with exit 2', async () => {
    const other = await runWarden(
      ['policy', 'test', '-f', candidate, '--since', '1h', '--tenant', 'nobody', '--json'],
      env(),
    );
    expect(JSON.parse(other.stdout).report.events).toBe(0);
    expect((await runWarden(['policy', 'test', '-f', candidate, '--since', '1y'], env())).code).toBe(2);
    expect(
      (
        await runWarden(
          ['policy', 'test', '-f', candidate, '--since', '1h', '--fail-on', 'ALLOW=>BLOCK'],
          env(),
        )
      ).code,
    ).toBe(2);
    expect(
      (await runWarden(['policy', 'test', '-f', candidate, '--fail-on', 'ALLOW->BLOCK>1%'], env())).code,
    ).toBe(2);
  }, 60_000);
});
