/**
 * `warden demo` against the five services, each its own process as `npm run up` starts it (its `main.ts`
 * through tsx, configured through env), over a database and a queue prefix of this file's own. The demo runs
 * in this process (the CLI program driven in-process) with an agent's and a person's key, as `npm run up` writes
 * them. Each step must print ✓ and leave its rows in Postgres; a second run must pass again (unique names); and
 * with the executor gone, the last step must fail with a message naming it instead of hanging.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgram } from '@warden/cli';
import { ensureTenant, insertApiKey } from '@warden/db';
import { displayPrefix, generateApiKey, hashApiKey, type Scope } from '@warden/domain';
import {
  createTestDatabase,
  deleteQueuePrefix,
  testQueuePrefix,
  testServers,
  type TestDatabase,
} from '@warden/testing';
import {
  SERVICE_NAMES,
  repoRoot,
  startServiceProcess,
  type ServiceProcess,
} from '../support/service-process.js';

const TENANT = 'demo-tenant';
/** Five tsx services start on a shared, busy machine: generous, never a timing assertion. */
const STARTUP_TIMEOUT_MS = 180_000;
const DEMO_TIMEOUT_MS = 400_000;

interface DemoRun {
  exitCode: number;
  out: string;
  err: string;
  runId: string;
}

let database: TestDatabase;
let prefix: string;
let workspaceDir: string;
let services: ServiceProcess[] = [];
let apiUrl: string;
let adminKey: string;
let agentKey: string;

async function createKey(scopes: Scope[], owner: string): Promise<string> {
  const key = generateApiKey();
  await insertApiKey(database.db, {
    tenantId: TENANT,
    name: owner,
    owner,
    keyHash: hashApiKey(key),
    keyPrefix: displayPrefix(key),
    scopes,
  });
  return key;
}

/** Runs `warden demo …` in this process; returns its exit code as main.ts would compute it, and its output. */
async function runDemo(extra: string[] = [], api = apiUrl): Promise<DemoRun> {
  let out = '';
  let err = '';
  const program = createProgram({
    environment: { env: {}, cwd: repoRoot },
    io: { out: (text) => void (out += text), err: (text) => void (err += text) },
  });
  let exitCode = 0;
  try {
    await program.parseAsync(
      [
        'demo',
        '--api',
        api,
        '--tenant',
        TENANT,
        '--admin-key',
        adminKey,
        '--agent-key',
        agentKey,
        '--workspace-dir',
        workspaceDir,
        '--timeout',
        '90',
        ...extra,
      ],
      { from: 'user' },
    );
  } catch (error) {
    exitCode = (error as { exitCode?: number }).exitCode ?? 1;
    err += (error as Error).message;
  }
  const runId = /warden demo (demo-\S+) against/.exec(out)?.[1] ?? '';
  return { exitCode, out, err, runId };
}

function stepLines(out: string, mark: '✓' | '✗'): string[] {
  return out.split('\n').filter((line) => line.startsWith(`  ${mark} `));
}

describe('warden demo against the five services', () => {
  beforeAll(async () => {
    database = await createTestDatabase();
    prefix = testQueuePrefix();
    workspaceDir = await mkdtemp(join(tmpdir(), 'warden-demo-ws-'));
    await ensureTenant(database.db, TENANT);
    adminKey = await createKey(['admin'], 'demo-person');
    agentKey = await createKey(['events:write', 'tasks:read', 'changesets:write'], 'demo-agent');
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: testServers.redisUrl,
      QUEUE_PREFIX: prefix,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      AUTH_CACHE_TTL_MS: '0',
      // No scheduled lead scans of their own: the demo asks for one.
      LEAD_SCAN_TRIGGERS: 'off',
      // As `npm run up`: handlers on this machine may be called (the demo's fallback listens on 127.0.0.1).
      EGRESS_ALLOWED_HOSTS: 'localhost,127.0.0.1,::1',
      EGRESS_ALLOWED_CIDRS: '127.0.0.0/8,::1/128',
      EXECUTOR_WORKSPACES: JSON.stringify({ default: workspaceDir }),
    };
    const started = await Promise.allSettled(
      SERVICE_NAMES.map((name) =>
        startServiceProcess({ name, mode: 'tsx', env, timeoutMs: STARTUP_TIMEOUT_MS - 10_000 }),
      ),
    );
    services = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    apiUrl = `http://127.0.0.1:${services.find((s) => s.name === 'api')!.port}`;
  }, STARTUP_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all(services.map((service) => service.stop()));
    await database?.drop();
    await deleteQueuePrefix(prefix);
    if (workspaceDir) await rm(workspaceDir, { recursive: true, force: true });
  }, 60_000);

  describe('when the whole stack runs', () => {
    let first: DemoRun;

    beforeAll(async () => {
      first = await runDemo();
    }, DEMO_TIMEOUT_MS);

    it('should pass every step and exit 0', () => {
      expect(first.err).toBe('');
      expect(stepLines(first.out, '✗')).toEqual([]);
      expect(stepLines(first.out, '✓')).toHaveLength(5);
      expect(first.exitCode).toBe(0);
      expect(first.out).toContain('where to look:');
      expect(first.out).toContain(`${apiUrl}/console/tasks/${first.runId}-redline`);
    });

    it('should leave the redline task blocked with its finding code', async () => {
      const decision = await database.db
        .selectFrom('decisions')
        .select(['decision_type', 'findings'])
        .where('tenant_id', '=', TENANT)
        .where('task_id', '=', `${first.runId}-redline`)
        .executeTakeFirstOrThrow();
      expect(decision.decision_type).toBe('BLOCK');
      expect(JSON.stringify(decision.findings)).toContain('REDLINE_FORBIDDEN_COMMAND');
      expect(first.out).toContain('finding REDLINE_FORBIDDEN_COMMAND');
    });

    it('should leave the reviewed task running, its gate released by the person and audited', async () => {
      const taskId = `${first.runId}-review`;
      const task = await database.db
        .selectFrom('tasks')
        .select('status')
        .where('tenant_id', '=', TENANT)
        .where('task_id', '=', taskId)
        .executeTakeFirstOrThrow();
      expect(task.status).toBe('running');
      const gate = await database.db
        .selectFrom('task_gates')
        .select(['state', 'released_by'])
        .where('tenant_id', '=', TENANT)
        .where('task_id', '=', taskId)
        .executeTakeFirstOrThrow();
      expect(gate.state).toBe('released');
      const audit = await database.db
        .selectFrom('task_audits')
        .select('payload')
        .where('tenant_id', '=', TENANT)
        .where('task_id', '=', taskId)
        .where('event_type', '=', 'GATE_RELEASED')
        .executeTakeFirstOrThrow();
      expect(audit.payload).toMatchObject({ released_by_owner: 'demo-person' });
    });

    it('should leave a manual run finished through the fallback after the agent call failed', async () => {
      const eventName = `${first.runId}-nightly-report`;
      const execution = await database.db
        .selectFrom('cron_executions')
        .select(['execution_id', 'status', 'manual'])
        .where('tenant_id', '=', TENANT)
        .where('event_name', '=', eventName)
        .executeTakeFirstOrThrow();
      expect(execution).toMatchObject({ status: 'fallback', manual: true });
      const attempts = await database.db
        .selectFrom('cron_execution_attempts')
        .select(['role', 'status'])
        .where('execution_id', '=', execution.execution_id)
        .orderBy('started_at')
        .execute();
      expect(attempts.map((a) => a.role)).toEqual(['agent', 'fallback']);
      expect(attempts[0]!.status).not.toBe('success');
      expect(attempts[1]!.status).toBe('success');
      const trigger = await database.db
        .selectFrom('cron_triggers')
        .select('paused')
        .where('tenant_id', '=', TENANT)
        .where('event_name', '=', eventName)
        .executeTakeFirstOrThrow();
      // Paused after the demo: its fallback lived in the demo's process.
      expect(trigger.paused).toBe(true);
    });

    it('should leave a blocked_reason_spike finding from the scan it requested', async () => {
      const scan = await database.db
        .selectFrom('lead_scans')
        .select(['scan_id', 'status'])
        .where('tenant_id', '=', TENANT)
        .executeTakeFirstOrThrow();
      expect(scan.status).toBe('completed');
      const finding = await database.db
        .selectFrom('lead_findings')
        .select(['fingerprint', 'last_scan_id', 'linked_task_id'])
        .where('tenant_id', '=', TENANT)
        .where('code', '=', 'blocked_reason_spike')
        .executeTakeFirstOrThrow();
      expect(finding.last_scan_id).toBe(scan.scan_id);
      expect(first.out).toContain(`finding ${finding.fingerprint}`);
    });

    it('should leave the change set approved by the person, completed, and the file on disk', async () => {
      const changeset = await database.db
        .selectFrom('changesets')
        .select(['status', 'approval_state', 'submitted_by', 'approval_by'])
        .where('tenant_id', '=', TENANT)
        .where('changeset_id', '=', `${first.runId}-schema`)
        .executeTakeFirstOrThrow();
      expect(changeset).toMatchObject({ status: 'completed', approval_state: 'approved' });
      expect(changeset.approval_by).not.toBe(changeset.submitted_by);
      const written = await readFile(
        join(workspaceDir, 'config/warden-demo', `${first.runId}.schema.json`),
        'utf8',
      );
      expect(JSON.parse(written)).toMatchObject({ demo: first.runId });
    });

    describe('and the demo runs a second time', () => {
      it(
        'should pass every step again under names of its own',
        async () => {
          const second = await runDemo();
          expect(stepLines(second.out, '✗')).toEqual([]);
          expect(stepLines(second.out, '✓')).toHaveLength(5);
          expect(second.exitCode).toBe(0);
          expect(second.runId).not.toBe(first.runId);
          const changesets = await database.db
            .selectFrom('changesets')
            .select('changeset_id')
            .where('tenant_id', '=', TENANT)
            .where('status', '=', 'completed')
            .execute();
          expect(changesets.map((c) => c.changeset_id).sort()).toEqual(
            [`${first.runId}-schema`, `${second.runId}-schema`].sort(),
          );
        },
        DEMO_TIMEOUT_MS,
      );
    });
  });

  describe('when the executor is not running', () => {
    it(
      'should fail only the change-set step, naming the executor, and exit 1',
      async () => {
        await services.find((s) => s.name === 'executor')!.stop();
        const run = await runDemo(['--timeout', '15']);
        expect(stepLines(run.out, '✓')).toHaveLength(4);
        const failed = stepLines(run.out, '✗');
        expect(failed).toHaveLength(1);
        expect(failed[0]).toMatch(/being applied did not happen within \d+ s/);
        expect(run.out).toContain('first check: is the executor running');
        expect(run.exitCode).toBe(1);
        expect(run.err).toContain('1 of 5 demo steps failed (step 5)');
      },
      DEMO_TIMEOUT_MS,
    );
  });

  describe('when nothing answers at the API address', () => {
    it('should fail every step saying the API cannot be reached, and exit 1', async () => {
      const run = await runDemo(['--timeout', '5'], 'http://127.0.0.1:1');
      expect(stepLines(run.out, '✗')).toHaveLength(5);
      expect(run.out).toContain('cannot reach the API at http://127.0.0.1:1');
      expect(run.out).toContain('first check: is it running? `npm run up`');
      expect(run.exitCode).toBe(1);
    }, 120_000);
  });

  describe('when no key is given and none was written', () => {
    it('should stop before any step, naming npm run up', async () => {
      let out = '';
      const program = createProgram({
        environment: { env: {}, cwd: workspaceDir },
        io: { out: (text) => void (out += text), err: () => {} },
      });
      const error = await program
        .parseAsync(['demo', '--api', apiUrl], { from: 'user' })
        .then(() => undefined)
        .catch((e: unknown) => e as Error & { exitCode?: number });
      expect(error?.message).toMatch(
        /no admin key: .*dev-admin-key does not exist — start the stack with `npm run up`/,
      );
      expect(error?.exitCode).toBe(1);
      expect(out).not.toContain('▸');
    });
  });
});
