/**
 * `warden policy promote` end to end: the supervisor decides real events under a monitor-mode policy (sudo is
 * a redline, so those decisions carry `would_have: BLOCK`); the promotion reads that evidence through the API,
 * refuses a draft above the threshold, pushes one within it or when accepted, and leaves activation to a
 * second person. The expected counts are computed here from how the events were made.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgram, describeError, exitCodeFor } from '@warden/cli';
import { parsePolicySource, type TaskEvent } from '@warden/domain';
import { call, startTestApi, type TestApi } from '../support/api.js';
import { createTestProcessor, POLICY_FILE, taskEvent } from '../support/supervisor.js';

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

/** The same program in this process (faster than a process per run; the first test runs the real binary). */
async function warden(args: string[], env: Record<string, string>) {
  let stdout = '';
  let stderr = '';
  const program = createProgram({
    environment: { env, cwd: repoRoot },
    io: { out: (text) => (stdout += text), err: (text) => (stderr += text) },
  });
  try {
    await program.parseAsync(['node', 'warden', ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    return { code: exitCodeFor(error), stdout, stderr: stderr + describeError(error) };
  }
}

const created = (tenantId: string, taskId: string, command: string): TaskEvent =>
  taskEvent(tenantId, `${taskId}-created`, {
    task_id: taskId,
    event_type: 'TASK_CREATED',
    payload: { agent_spec: { name: 'a', capabilities: [] }, command_spec: { name: 'c', command } },
  });

const SUDO_TASKS = 3; // would have been BLOCK
const LS_TASKS = 17; // ALLOW either way
const DECISIONS = SUDO_TASKS + LS_TASKS;

describe('warden policy promote', () => {
  let api: TestApi;
  let alice: string; // pushes
  let bob: string; // approves
  let rita: string; // reads
  let monitorSource: string;

  beforeAll(async () => {
    api = await startTestApi();
    alice = await api.createKey('acme', ['policies:write', 'policies:read'], 'alice');
    bob = await api.createKey('acme', ['policies:approve'], 'bob');
    rita = await api.createKey('acme', ['policies:read'], 'rita');
    const bootstrap = await readFile(POLICY_FILE, 'utf8');
    monitorSource = bootstrap.replace('  default: enforce #', '  default: monitor #');
    expect(monitorSource).not.toBe(bootstrap);

    // acme's active policy puts every event type in monitor mode (version 2, approved by bob).
    const pushed = await call(`${api.url}/v1/policies`, { key: alice, body: { source: monitorSource } });
    expect(pushed.status).toBe(201);
    const activated = await call(`${api.url}/v1/policies/supervisor/versions/2/activate`, {
      key: bob,
      body: {},
    });
    expect(activated.status).toBe(200);

    // The supervisor decides under that policy, one event at a time as they would arrive.
    const monitor = await createTestProcessor(api.db, {
      policy: parsePolicySource('supervisor', monitorSource, 'monitor policy'),
    });
    for (let t = 0; t < SUDO_TASKS; t++) {
      await monitor.processEvents([created('acme', `sudo-${t}`, 'sudo reboot')]);
      // Another event type of the same task: not part of TASK_CREATED's evidence.
      await monitor.processEvents([
        taskEvent('acme', `sudo-${t}-step`, { task_id: `sudo-${t}`, event_type: 'TASK_STEP_COMPLETED' }),
      ]);
    }
    for (let t = 0; t < LS_TASKS; t++) await monitor.processEvents([created('acme', `ls-${t}`, 'ls -la')]);
    // Another tenant's monitor-mode decisions, and acme's decisions made while enforcing: not evidence.
    await monitor.processEvents([created('globex', 'sudo-globex', 'sudo reboot')]);
    const enforcing = await createTestProcessor(api.db);
    await enforcing.processEvents([created('acme', 'sudo-enforced', 'sudo reboot')]);
  });
  afterAll(async () => {
    await api?.stop();
  });

  const as = (key: string) => ({ WARDEN_API_URL: api.url, WARDEN_API_KEY: key });
  const versions = async () =>
    (await call(`${api.url}/v1/policies/supervisor/versions`, { key: rita })).body.items as Array<{
      version: number;
      status: string;
      note: string | null;
    }>;

  it('should show what enforcement would have done with --dry-run, a reader key and no draft', async () => {
    const shown = await runWarden(
      ['policy', 'promote', '--event-type', 'TASK_CREATED', '--dry-run'],
      as(rita),
    );
    // 3 of 20 is above the default 1%: a dry run says a promotion would need --accept.
    expect(shown.code).toBe(1);
    expect(shown.stdout).toContain('now monitor by enforcement.default; active version 2');
    expect(shown.stdout).toContain(`${DECISIONS} decisions recorded in monitor mode`);
    expect(shown.stdout).toMatch(/BLOCK\s+3\s+15%/);
    expect(shown.stdout).toMatch(/ALLOW\s+17\s+85%/);
    expect(shown.stdout).toContain('would have been BLOCK or PAUSE: 3 of 20 (15%); threshold 1%');
    expect(shown.stdout).toMatch(/task sudo-\d, event sudo-\d-created/);
    expect(shown.stdout).toMatch(/curl .*\/v1\/tasks\/sudo-\d\/decisions\?event_id=sudo-\d-created/);
    expect(shown.stdout).toContain('+  event_types: { TASK_CREATED: enforce }');
    expect(shown.stderr).toContain('above the 1% threshold');
    expect((await versions()).map((v) => v.version)).toEqual([2, 1]);
  });

  it('should report the evidence over HTTP, counted from the real decisions', async () => {
    const evidence = await call(
      `${api.url}/v1/policies/supervisor/promotions/evidence?event_type=TASK_CREATED&since=1h&max_rate=20%25`,
      { key: rita },
    );
    expect(evidence.status).toBe(200);
    expect(evidence.body.summary).toMatchObject({
      decisions: DECISIONS,
      would_have: { ALLOW: LS_TASKS, BLOCK: SUDO_TASKS, PAUSE: 0, RETRY: 0, REQUIRE_REVIEW: 0 },
      changed: SUDO_TASKS,
      stopped: SUDO_TASKS,
    });
    expect(evidence.body.summary.top_findings[0]).toMatchObject({
      code: expect.stringMatching(/^REDLINE/),
      count: 3,
    });
    expect(evidence.body.summary.samples.map((s: { task_id: string }) => s.task_id).sort()).toEqual([
      'sudo-0',
      'sudo-1',
      'sudo-2',
    ]);
    expect(evidence.body.verdict.passes).toBe(true);
    // The step events are evidence for their own type only.
    const steps = await call(
      `${api.url}/v1/policies/supervisor/promotions/evidence?event_type=TASK_STEP_COMPLETED`,
      { key: rita },
    );
    expect(steps.body.summary).toMatchObject({ decisions: SUDO_TASKS, stopped: 0 });
  });

  it('should refuse a draft above the threshold: exit 1, nothing stored', async () => {
    const refused = await warden(
      ['policy', 'promote', '--event-type', 'TASK_CREATED', '--max-rate', '1%'],
      as(alice),
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('3 of 20 TASK_CREATED decisions');
    expect(refused.stderr).toContain('above the 1% threshold; no draft stored (pass --accept');
    expect(refused.stderr).not.toMatch(/\n\s+at /);
    expect((await versions()).map((v) => v.version)).toEqual([2, 1]);
  });

  it('should push the draft with --accept, the evidence as its reason', async () => {
    const accepted = await warden(
      ['policy', 'promote', '--event-type', 'TASK_CREATED', '--accept', '--note', 'sudo must stop', '--json'],
      as(alice),
    );
    expect(accepted.stderr).toContain('draft 3 stored (accepted above the threshold)');
    expect(accepted.code).toBe(0);
    const outcome = JSON.parse(accepted.stdout);
    expect(outcome).toMatchObject({
      accepted: true,
      draft: { version: 3, status: 'draft', base_version: 2 },
    });
    expect(outcome.draft.note).toContain(
      'above the 1% threshold; accepted by alice regardless; sudo must stop',
    );
    const audits = await call(`${api.url}/v1/policies/supervisor/audits`, { key: rita });
    const pushedAudit = audits.body.items.find(
      (a: { event_type: string; payload: { version?: number } }) =>
        a.event_type === 'POLICY_PUSHED' && a.payload.version === 3,
    );
    expect(pushedAudit.payload.promotion).toMatchObject({
      event_type: 'TASK_CREATED',
      decisions: DECISIONS,
      stopped: SUDO_TASKS,
      passes: false,
      accepted: true,
    });
  });

  it('should push within the threshold, and leave activation to a second person', async () => {
    const pushed = await warden(
      ['policy', 'promote', '--event-type', 'TASK_CREATED', '--since', '24h', '--max-rate', '20%'],
      as(alice),
    );
    expect(pushed.code).toBe(0);
    expect(pushed.stdout).toContain('verdict: passes: 3 of 20 TASK_CREATED decisions');
    expect(pushed.stdout).toContain('supervisor policy version 4 (draft;');
    expect(pushed.stdout).toContain('+  event_types: { TASK_CREATED: enforce }');
    expect(pushed.stderr).toContain('warden policy activate 4');
    const own = await warden(['policy', 'activate', '4'], as(alice));
    expect(own.code).toBe(1);
    expect(own.stderr).toContain('403');
    const approved = await call(`${api.url}/v1/policies/supervisor/versions/4/activate`, {
      key: bob,
      body: {},
    });
    expect(approved.status).toBe(200);
    // Enforced now: nothing left to promote.
    const again = await call(`${api.url}/v1/policies/supervisor/promotions`, {
      key: alice,
      body: { event_type: 'TASK_CREATED', accept: true },
    });
    expect(again.status).toBe(409);
    expect(again.body.error.message).toContain('TASK_CREATED is enforced for tenant acme already');
  });

  it('should refuse bad input naming the field: exit 2 and 400', async () => {
    for (const [flag, value] of [
      ['--event-type', 'task_created'],
      ['--since', '7 days'],
      ['--max-rate', '1'],
    ] as const) {
      const args = ['policy', 'promote', '--event-type', 'TASK_FAILED', flag, value];
      const bad = await warden(args, as(alice));
      expect(bad.code, `${flag} ${value}`).toBe(2);
      expect(bad.stderr).toContain(flag);
    }
    for (const [field, body] of [
      ['event_type', { event_type: 'task created' }],
      ['since', { event_type: 'TASK_FAILED', since: '1y' }],
      ['max_rate', { event_type: 'TASK_FAILED', max_rate: '0.01' }],
      ['note', { event_type: 'TASK_FAILED', accept: true, note: 'bad \u0000' }],
    ] as const) {
      const bad = await call(`${api.url}/v1/policies/supervisor/promotions`, { key: alice, body });
      expect(bad.status, field).toBe(400);
      expect(JSON.stringify(bad.body.error)).toContain(field);
    }
    // Well-formed, but no built-in policy and no decisions: a typo, refused before anything else.
    const typo = await warden(['policy', 'promote', '--event-type', 'TASK_CRATED'], as(alice));
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('unknown event type "TASK_CRATED"');
    const missing = await call(`${api.url}/v1/policies/supervisor/promotions/evidence`, { key: rita });
    expect(missing.status).toBe(400);
    expect(JSON.stringify(missing.body.error)).toContain('event_type');
  });

  it('should refuse a reader pushing, and a key acting for another tenant', async () => {
    const reader = await call(`${api.url}/v1/policies/supervisor/promotions`, {
      key: rita,
      body: { event_type: 'TASK_FAILED' },
    });
    expect(reader.status).toBe(403);
    const other = await call(`${api.url}/v1/policies/supervisor/promotions`, {
      key: alice,
      body: { event_type: 'TASK_FAILED', tenant_id: 'globex', accept: true },
    });
    expect(other.status).toBe(403);
    expect(other.body.error.message).toContain('acts for tenant acme, not globex');
    expect((await versions()).map((v) => v.version)).toEqual([4, 3, 2, 1]);
  });
});
