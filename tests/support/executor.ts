/**
 * Helpers for the executor suites: temp workspaces with real files, sealed submissions, the real executor in this
 * process (or driven step by step), and waits that poll Postgres against generous deadlines.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { insertChangeSet, type Db } from '@warden/db';
import {
  ChangeSetSubmissionSchema,
  WriteGatePolicySchema,
  canonicalJson,
  changeSetIdempotencyKey,
  computeChangeSetChecksum,
  computePlanHash,
  contentSha256,
  parsePolicyYaml,
  submissionFingerprint,
  writeGatePolicyHash,
  type ChangeSetSubmissionInput,
  type FileChange,
  type WriteGateResult,
} from '@warden/domain';
import { QUEUE_NAMES, WardenQueues, changesetJobId, createRedis } from '@warden/queue';
import { testServers } from '@warden/testing';
// The tests package does not list the executor as a dependency, so it is imported by path (as the supervisor is).
import {
  createExecutorService,
  loadConfig,
  type ExecutorHooks,
  type ExecutorService,
} from '../../services/executor/src/index.js';
import { waitFor } from './supervisor.js';

export { waitFor };

/** The repository's WriteGate policy (the one the API and the executor load by default). */
export const WRITEGATE_POLICY_FILE = fileURLToPath(
  new URL('../../infra/policies/writegate.yaml', import.meta.url),
);

export interface TempWorkspace {
  root: string;
  write(path: string, content: string, mode?: number): Promise<void>;
  read(path: string): Promise<string>;
  exists(path: string): Promise<boolean>;
  /** Every entry under the root, with type, mode and a content hash: two equal snapshots are byte-identical trees. */
  snapshot(): Promise<Record<string, string>>;
  remove(): Promise<void>;
}

/** A directory of its own under the OS temp dir, seeded with `files`. */
export async function tempWorkspace(
  files: Record<string, string> = {},
  prefix = 'warden-ws-',
): Promise<TempWorkspace> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  const workspace: TempWorkspace = {
    root,
    async write(path, content, mode) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), content);
      if (mode !== undefined) await chmod(join(root, path), mode);
    },
    read: (path) => readFile(join(root, path), 'utf8'),
    exists: (path) =>
      lstat(join(root, path)).then(
        () => true,
        () => false,
      ),
    snapshot: () => snapshotTree(root),
    remove: () => rm(root, { recursive: true, force: true }),
  };
  for (const [path, content] of Object.entries(files)) await workspace.write(path, content);
  return workspace;
}

export async function snapshotTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, rel: string) => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const key = rel === '' ? name : `${rel}/${name}`;
      const stats = await lstat(path);
      const mode = (stats.mode & 0o7777).toString(8);
      if (stats.isSymbolicLink()) out[key] = `link -> ${await readlink(path)}`;
      else if (stats.isDirectory()) {
        out[key] = `dir ${mode}`;
        await walk(path, key);
      } else
        out[key] = `file ${mode} ${createHash('sha256')
          .update(await readFile(path))
          .digest('hex')}`;
    }
  };
  await walk(root, '');
  return out;
}

export const sha = contentSha256;

/** File changes in the shape agents send them, with hashes filled in. */
export const change = {
  create: (path: string, content: string): FileChange => ({
    operation: 'create',
    path,
    new_content: content,
    new_hash: sha(content),
  }),
  update: (path: string, before: string, after: string): FileChange => ({
    operation: 'update',
    path,
    old_hash: sha(before),
    new_content: after,
    new_hash: sha(after),
  }),
  delete: (path: string, before: string): FileChange => ({
    operation: 'delete',
    path,
    old_hash: sha(before),
  }),
};

export interface SubmissionOptions {
  changesetId: string;
  planId?: string;
  workspace: string;
  changes: FileChange[];
  plan?: Partial<ChangeSetSubmissionInput['plan']>;
  /** Overrides the computed checksum (tampering tests). */
  checksum?: string;
}

/**
 * A submission the repository policy ALLOWs when its paths are plain docs: LOW risk, rollback and verification
 * plans present, no health checks needed. Override `plan` to change that.
 */
export function submission(options: SubmissionOptions): ChangeSetSubmissionInput {
  const planId = options.planId ?? `plan-${options.changesetId}`;
  return {
    plan: {
      plan_id: planId,
      intent: 'update the docs',
      objective: 'keep the docs current',
      rationale: 'tests',
      affected_paths: options.changes.map((c) => c.path),
      risk_level_proposed: 'LOW',
      rollback_plan: 'the executor restores the backups',
      verification_plan: { description: 'nothing to run for docs' },
      health_checks: [],
      created_by: 'test-agent',
      confidence: 0.9,
      ...options.plan,
    },
    changeset: {
      changeset_id: options.changesetId,
      plan_id: planId,
      workspace: options.workspace,
      changes: options.changes,
      checksum: options.checksum ?? computeChangeSetChecksum(options.changes),
      generated_by: 'test-agent',
    },
  };
}

/**
 * Verifications the test policy declares (agents only name them): `node -e` scripts that pass, fail, or hang.
 * Tests that need one of their own pass it to `testPolicyFile`.
 */
export const TEST_VERIFICATIONS: Record<string, { command: string[]; timeout_ms?: number; env?: string[] }> =
  {
    pass: { command: ['node', '-e', 'process.exit(0)'] },
    'broken-build': { command: ['node', '-e', 'console.error("broken build"); process.exit(1)'] },
    'too-slow': { command: ['node', '-e', 'setTimeout(() => {}, 60000)'], timeout_ms: 500 },
    'takes-4s': { command: ['node', '-e', 'setTimeout(() => {}, 4000)'], timeout_ms: 30_000 },
  };

/**
 * A WriteGate policy file: the repository's (or `base`), plus `TEST_VERIFICATIONS` and `verifications`, written
 * as JSON to a temp file. Give the same file to the API and the executor.
 */
export async function testPolicyFile(
  verifications: Record<string, unknown> = {},
  base: Record<string, unknown> = parsePolicyYaml(
    readFileSync(WRITEGATE_POLICY_FILE, 'utf8'),
    WriteGatePolicySchema,
    WRITEGATE_POLICY_FILE,
  ),
): Promise<string> {
  const policy = {
    ...base,
    verifications: {
      ...((base.verifications as object | undefined) ?? {}),
      ...TEST_VERIFICATIONS,
      ...verifications,
    },
  };
  // One file per distinct policy, in one directory of this process, removed when it exits.
  const text = JSON.stringify(policy, null, 2);
  const file = join(
    policyDir(),
    `writegate-${createHash('sha256').update(text).digest('hex').slice(0, 16)}.json`,
  );
  await writeFile(file, text);
  return file;
}

let testPolicyDir: string | undefined;
function policyDir(): string {
  if (testPolicyDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'warden-policy-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    testPolicyDir = dir;
  }
  return testPolicyDir;
}

export interface TestExecutor {
  service: ExecutorService;
  stop(): Promise<void>;
}

/**
 * The real executor service in this process over a test's database, queue prefix and workspaces, with the
 * repository policy plus `TEST_VERIFICATIONS` unless `env` names another `WRITEGATE_POLICY_FILE`.
 */
export async function startTestExecutor(options: {
  databaseUrl: string;
  prefix: string;
  /** Names to roots, or to `{ root, tenants }` (see EXECUTOR_WORKSPACES). */
  workspaces: Record<string, string | { root: string; tenants?: string[] }>;
  env?: Record<string, string>;
  hooks?: ExecutorHooks;
  extendLocks?: boolean;
  consume?: boolean;
}): Promise<TestExecutor> {
  const config = loadConfig({
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: testServers.redisUrl,
    QUEUE_PREFIX: options.prefix,
    OPS_PORT: '0',
    LOG_LEVEL: 'silent',
    WRITEGATE_POLICY_FILE: options.env?.WRITEGATE_POLICY_FILE ?? (await testPolicyFile()),
    EXECUTOR_WORKSPACES: JSON.stringify(options.workspaces),
    // Tests call servers on this machine: loopback is allowed on purpose (the egress tests narrow it).
    EGRESS_ALLOWED_HOSTS: '127.0.0.1,localhost',
    EGRESS_ALLOWED_CIDRS: '127.0.0.0/8,::1/128',
    // Where the test's `node` is, whatever the machine: the sandbox never sees the executor's own PATH.
    EXECUTOR_SANDBOX_PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
    EXECUTOR_POLL_INTERVAL_MS: '60000',
    EXECUTOR_LOCK_TTL_MS: '5000',
    DB_POOL_SIZE: '6',
    PATH: process.env.PATH ?? '',
    ...options.env,
  });
  const service = createExecutorService(config, {
    ...(options.hooks ? { hooks: options.hooks } : {}),
    ...(options.extendLocks === undefined ? {} : { extendLocks: options.extendLocks }),
    ...(options.consume === undefined ? {} : { consume: options.consume }),
  });
  await service.start();
  return { service, stop: () => service.stop() };
}

/** Waits until the change set is in one of `statuses`; returns its row. */
export async function waitForChangeSet(
  db: Db,
  tenantId: string,
  changesetId: string,
  statuses: readonly string[],
  timeoutMs = 30_000,
) {
  return waitFor(
    `change set ${changesetId} to be ${statuses.join(' or ')}`,
    async () => {
      const row = await db
        .selectFrom('changesets')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('changeset_id', '=', changesetId)
        .executeTakeFirst();
      // `failed` while a rollback runs is not the end: wait for finished_at (or the rollback's own status).
      if (row && statuses.includes(row.status) && (row.status !== 'failed' || row.finished_at !== null))
        return row;
      // Thrown, so a timeout names the status it was stuck in.
      throw new Error(
        `status ${row?.status ?? 'missing'}${row?.error_message ? ` (${row.error_message})` : ''}`,
      );
    },
    { timeoutMs, intervalMs: 50 },
  );
}

/** Audit event types of a change set, in chain order. */
export async function changeSetAuditTypes(db: Db, tenantId: string, changesetId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('task_audits')
    .select('event_type')
    .where('tenant_id', '=', tenantId)
    .where('task_id', '=', `changeset:${changesetId}`)
    .orderBy('chain_seq')
    .execute();
  return rows.map((r) => r.event_type);
}

/**
 * Puts a change set straight into Postgres, bypassing the API and its WriteGate, with a forged verdict: how an
 * attacker with database access (or a bug upstream) would hand the executor something it must still refuse.
 * The checksum stored is the submission's own (tampering tests pass a wrong one).
 */
export async function forgeChangeSet(
  db: Db,
  tenantId: string,
  input: ChangeSetSubmissionInput,
  options: { verdict?: 'ALLOW' | 'NEED_APPROVAL'; approvedBy?: string; submittedBy?: string } = {},
): Promise<void> {
  // Parsed loosely: a forged change set may carry paths the schema would accept but the gate must refuse.
  const { plan, changeset } = ChangeSetSubmissionSchema.parse(input);
  const planHash = computePlanHash(plan);
  const policy = WriteGatePolicySchema.parse({});
  const verdict: WriteGateResult = {
    verdict: options.verdict ?? 'ALLOW',
    risk_effective: 'LOW',
    reasons: [
      {
        step: 'gating',
        outcome: 'pass',
        code: 'FORGED',
        message: 'forged by the test: the API never saw this change set',
      },
    ],
    policy_hash: writeGatePolicyHash(policy),
    gate_version: '1',
    stats: { files: changeset.changes.length, changed_lines: 0, deletes: 0 },
  };
  await db.transaction().execute(async (trx) => {
    await insertChangeSet(trx, {
      tenant_id: tenantId,
      changeset_id: changeset.changeset_id,
      plan_id: plan.plan_id,
      workspace: changeset.workspace,
      generated_by: changeset.generated_by,
      checksum: changeset.checksum,
      plan_hash: planHash,
      idempotency_key: changeSetIdempotencyKey(plan.plan_id, changeset.checksum),
      fingerprint: submissionFingerprint({
        workspace: changeset.workspace,
        planHash,
        checksum: changeset.checksum,
      }),
      plan_json: canonicalJson(plan),
      changes_json: canonicalJson(changeset.changes),
      verdict,
      status: 'pending',
      approval_state: options.verdict === 'NEED_APPROVAL' ? 'pending' : 'not_required',
      submitted_by: options.submittedBy ?? 'forged',
      queued: true,
    });
    if (options.approvedBy) {
      await trx
        .updateTable('changesets')
        .set({
          approval_state: 'approved',
          approval_by: options.approvedBy,
          approval_at: new Date(),
          approval_checksum: changeset.checksum,
          approval_plan_hash: planHash,
        })
        .where('tenant_id', '=', tenantId)
        .where('changeset_id', '=', changeset.changeset_id)
        .execute();
    }
  });
}

/** Puts an execute job on the `changesets` queue, as the API does after an ALLOW or an approval. */
export async function enqueueChangeSet(prefix: string, tenantId: string, changesetId: string): Promise<void> {
  const redis = createRedis(testServers.redisUrl, 'general');
  const queues = new WardenQueues({ connection: redis, prefix });
  try {
    await queues.enqueue(
      QUEUE_NAMES.changesets,
      'execute',
      { tenant_id: tenantId, changeset_id: changesetId },
      { jobId: changesetJobId(tenantId, changesetId) },
    );
  } finally {
    await queues.close();
    redis.disconnect();
  }
}

/** Steps of a change set, oldest first, as `step:status`. */
export async function changeSetSteps(db: Db, tenantId: string, changesetId: string): Promise<string[]> {
  const rows = await db
    .selectFrom('changeset_steps')
    .select(['step', 'status'])
    .where('tenant_id', '=', tenantId)
    .where('changeset_id', '=', changesetId)
    .orderBy('step_id')
    .execute();
  return rows.map((r) => `${r.step}:${r.status}`);
}
