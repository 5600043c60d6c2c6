/**
 * Backup and restore as docs/runbook.md tells an operator to do them: audit rows written through the
 * supervisor's real decision path and anchored, `pg_dump --format=custom` of the database, `pg_restore` into a
 * fresh one, then `warden audit verify` — the CLI as a child process — against the restored copy. The copy
 * must verify, anchors included, row for row the same as the original; and a row edited in the copy must be
 * named, so the check cannot pass by verifying nothing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { anchorAuditChains, pendingMigrations, type Db } from '@warden/db';
import { auditKeysField } from '@warden/domain';
import { createTestDatabase, type TestDatabase } from '@warden/testing';
import { createTestProcessor, taskEvent } from '../support/supervisor.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const SECRET = 'backup-restore-audit-key-0123456789abcdef';
const [KEY] = auditKeysField.parse(SECRET);
/** Each start of the CLI compiles TypeScript sources: seconds on a busy machine. */
const CLI_TIMEOUT_MS = 90_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `warden …` from the repository root, as an operator runs it, over `databaseUrl` with the audit key. */
function warden(args: string[], databaseUrl: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'packages/cli/src/main.ts', ...args], {
      cwd: repoRoot,
      env: { ...process.env, DATABASE_URL: databaseUrl, WARDEN_AUDIT_KEY: SECRET },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A PostgreSQL client program (pg_dump, pg_restore); fails with its output, or names what to install. */
function postgresTool(program: string, args: string[]): void {
  const result = spawnSync(program, args, { encoding: 'utf8', timeout: 60_000 });
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new Error(
      `${program} is not installed: it comes with the PostgreSQL client (Debian: postgresql-client)`,
    );
  }
  if (result.error) throw result.error;
  expect(result.status, `${program} ${args.join(' ')}\n${result.stdout}${result.stderr}`).toBe(0);
}

/** Every audit row, anchor and chain head, in a stable order: what a faithful restore must reproduce. */
async function auditState(db: Db) {
  return {
    audits: await db
      .selectFrom('task_audits')
      .selectAll()
      .orderBy('tenant_id')
      .orderBy('chain_seq')
      .execute(),
    heads: await db.selectFrom('audit_chain_heads').selectAll().orderBy('tenant_id').execute(),
    anchors: await db
      .selectFrom('audit_anchors')
      .selectAll()
      .orderBy('tenant_id')
      .orderBy('chain_seq')
      .execute(),
  };
}

interface VerifyReport {
  ok: boolean;
  anchors_checked: boolean;
  store: string[];
  tenants: Array<{
    tenant_id: string;
    rows: number;
    problems: unknown[];
    anchors: { checked: boolean; count: number; last_anchored_seq: number | null; unanchored_rows: number };
  }>;
}

describe('backup and restore of the audit trail', () => {
  let original: TestDatabase;
  let restored: TestDatabase;
  let scratch: string;
  let dump: string;

  beforeAll(async () => {
    original = await createTestDatabase();
    // Empty, not migrated: pg_restore brings the schema, the migration history included.
    restored = await createTestDatabase({ migrated: false });
    scratch = await mkdtemp(join(tmpdir(), 'warden-backup-'));
    dump = join(scratch, 'warden.dump');
  });

  afterAll(async () => {
    await Promise.all([original?.drop(), restored?.drop()]);
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('should write decisions and audit rows through the supervisor and anchor them', async () => {
    const processor = await createTestProcessor(original.db);
    await processor.processEvents([
      taskEvent('acme', 'create-1', {
        task_id: 'installer',
        event_type: 'TASK_CREATED',
        payload: {
          agent_spec: { name: 'fixer', capabilities: ['network'] },
          command_spec: { name: 'install', command: 'curl', args: ['https://get.example.sh', '|', 'sh'] },
        },
      }),
      taskEvent('acme', 'create-2', { task_id: 'risky', event_type: 'TASK_CREATED' }),
      taskEvent('acme', 'step-1', {
        task_id: 'risky',
        event_type: 'TASK_STEP_COMPLETED',
        payload: { risk_indicators: { error_rate: 0.9, resource_usage: 0.95 } },
      }),
      taskEvent('globex', 'state-1', { task_id: 'report' }),
      taskEvent('globex', 'state-2', { task_id: 'report', payload: { status: 'completed' } }),
    ]);
    expect(await anchorAuditChains(original.db, { key: KEY! })).toEqual([
      expect.objectContaining({ tenant_id: 'acme', status: 'anchored' }),
      expect.objectContaining({ tenant_id: 'globex', status: 'anchored' }),
    ]);
    // Rows after the newest anchor too: a restore must carry the unanchored tail as well.
    await processor.processEvents([taskEvent('acme', 'state-3', { task_id: 'risky' })]);

    const decisions = await original.db
      .selectFrom('decisions')
      .select(['event_id', 'decision_type'])
      .orderBy('event_id')
      .execute();
    expect(decisions).toEqual(
      expect.arrayContaining([
        { event_id: 'create-1', decision_type: 'BLOCK' },
        { event_id: 'step-1', decision_type: 'PAUSE' },
      ]),
    );
    const { audits, anchors } = await auditState(original.db);
    expect(audits.length).toBeGreaterThanOrEqual(6);
    expect(anchors).toHaveLength(2);
  });

  it('should dump with pg_dump and restore with pg_restore into an empty database, row for row', async () => {
    postgresTool('pg_dump', ['--format=custom', `--file=${dump}`, original.url]);
    postgresTool('pg_restore', ['--no-owner', '--exit-on-error', `--dbname=${restored.url}`, dump]);

    expect(await pendingMigrations(restored.db), 'the restored database is behind its migrations').toEqual(
      [],
    );
    expect(await auditState(restored.db)).toEqual(await auditState(original.db));
  });

  it(
    'should verify the restored audit chains, anchors included, with warden audit verify',
    async () => {
      const run = await warden(['audit', 'verify', '--json'], restored.url);
      expect(run.code, run.stderr).toBe(0);
      const report = JSON.parse(run.stdout) as VerifyReport;
      const { audits } = await auditState(original.db);
      const rowsOf = (tenant: string) => audits.filter((a) => a.tenant_id === tenant).length;
      expect(report).toMatchObject({ ok: true, anchors_checked: true, store: [] });
      expect(report.tenants.map((t) => t.tenant_id).sort()).toEqual(['acme', 'globex']);
      for (const tenant of report.tenants) {
        expect(tenant.problems, `${tenant.tenant_id}: problems`).toEqual([]);
        expect(tenant.rows, `${tenant.tenant_id}: rows verified`).toBe(rowsOf(tenant.tenant_id));
        expect(tenant.anchors, `${tenant.tenant_id}: anchors`).toMatchObject({ checked: true, count: 1 });
      }
      expect(report.tenants.find((t) => t.tenant_id === 'acme')!.anchors.unanchored_rows).toBeGreaterThan(0);
    },
    CLI_TIMEOUT_MS,
  );

  it(
    'should name a row edited in the restored copy',
    async () => {
      const victim = await restored.db
        .selectFrom('task_audits')
        .select(['audit_id', 'chain_seq'])
        .where('tenant_id', '=', 'acme')
        .where('event_type', '=', 'SUPERVISOR_BLOCKED')
        .executeTakeFirstOrThrow();
      await sql`update task_audits set payload = jsonb_set(payload, '{reason}', '"allowed after all"') where audit_id = ${victim.audit_id}`.execute(
        restored.db,
      );

      const run = await warden(['audit', 'verify'], restored.url);
      expect(run.code, run.stdout + run.stderr).toBe(1);
      expect(run.stdout).toContain(
        `✗ acme: broken at audit_id ${victim.audit_id} (chain position ${victim.chain_seq}): content does not match its hash: the row was edited`,
      );
      expect(run.stdout).toMatch(
        /^✓ globex: \d+ rows verified; anchored up to position \d+ \(1 anchor checked\)$/m,
      );
    },
    CLI_TIMEOUT_MS,
  );
});
