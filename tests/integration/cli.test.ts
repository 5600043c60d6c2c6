/**
 * The `warden` command line against real Postgres and Redis. End-to-end cases run the CLI as a child
 * process, exactly as an operator or a Kubernetes Job would; preflight's individual checks are also
 * exercised by calling `runPreflight` directly.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import {
  createApiKey,
  formatPreflightReport,
  runPreflight,
  type PreflightCheck,
  type PreflightReport,
} from '@warden/cli';
import { createDb, dropDatabase, migrations, pendingMigrations } from '@warden/db';
import { ALL_QUEUE_NAMES } from '@warden/queue';
import { SERVICE_NAMES } from '@warden/config';
import { hashApiKey, SCOPES } from '@warden/domain';
import {
  createTestDatabase,
  databaseUrlFor,
  deleteQueuePrefix,
  testQueuePrefix,
  testServers,
  type TestDatabase,
} from '@warden/testing';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const migrationCount = Object.keys(migrations).length;
const UNREACHABLE_POSTGRES = 'postgres://postgres@127.0.0.1:1/x';
const UNREACHABLE_REDIS = 'redis://127.0.0.1:1';
/** For tests that start the CLI more than once: each start loads TypeScript sources, seconds on a busy machine. */
const SEVERAL_PROCESSES_TIMEOUT_MS = 60_000;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  elapsedMs: number;
}

/** Runs `warden …` from the repository root with the given variables on top of this process's environment. */
function runWarden(
  args: string[],
  env: Record<string, string> = {},
  entry = ['--import', 'tsx', 'packages/cli/src/main.ts'],
): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...entry, ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, elapsedMs: Date.now() - started }));
  });
}

function expectOneLineError(result: CliResult): void {
  expect(result.stderr).toMatch(/^error: /);
  expect(result.stderr).not.toContain('    at ');
}

function check(report: PreflightReport, name: string): PreflightCheck {
  const found = report.checks.find((c) => c.name === name);
  if (!found) throw new Error(`no check named ${name} in ${report.checks.map((c) => c.name).join(', ')}`);
  return found;
}

const databases: TestDatabase[] = [];
const queuePrefix = testQueuePrefix();
let scratchDir: string;

/** A database of this test's own, dropped in afterAll. */
async function testDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const database = await createTestDatabase(options);
  databases.push(database);
  return database;
}

function envFor(database: { url: string }, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: database.url,
    REDIS_URL: testServers.redisUrl,
    QUEUE_PREFIX: queuePrefix,
    ...overrides,
  };
}

beforeAll(async () => {
  scratchDir = await mkdtemp(join(tmpdir(), 'warden-cli-'));
});

afterAll(async () => {
  await Promise.all(databases.map((database) => database.drop()));
  await deleteQueuePrefix(queuePrefix);
  await rm(scratchDir, { recursive: true, force: true });
});

describe('warden migrate', () => {
  it(
    'should apply every migration on an empty database, then apply nothing the second time',
    async () => {
      const database = await testDatabase({ migrated: false });

      const first = await runWarden(['migrate'], envFor(database));
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      for (const name of Object.keys(migrations)) expect(first.stdout).toContain(`applied ${name}`);
      expect(first.stdout).toMatch(new RegExp(`applied ${migrationCount} migrations?\\n$`));
      expect(await pendingMigrations(database.db)).toEqual([]);

      const second = await runWarden(['migrate'], envFor(database));
      expect(second.code).toBe(0);
      expect(second.stdout).toMatch(
        new RegExp(`^database is current \\(${migrationCount} migrations?\\)\\n$`),
      );
    },
    SEVERAL_PROCESSES_TIMEOUT_MS,
  );

  it('should create a missing database with --create-db', async () => {
    const url = databaseUrlFor(`warden_t_cli_${randomUUID().replaceAll('-', '').slice(0, 12)}`);
    try {
      const result = await runWarden(['migrate', '--create-db'], { DATABASE_URL: url });
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('created database warden_t_cli_');
      const db = createDb({ url, maxConnections: 1 });
      try {
        expect(await pendingMigrations(db)).toEqual([]);
      } finally {
        await db.destroy();
      }
    } finally {
      await dropDatabase(url);
    }
  });

  it('should refuse a missing database without --create-db, pointing at the flag', async () => {
    const url = databaseUrlFor(`warden_t_missing_${randomUUID().replaceAll('-', '').slice(0, 12)}`);
    const result = await runWarden(['migrate'], { DATABASE_URL: url });
    expect(result.code).toBe(1);
    expectOneLineError(result);
    expect(result.stderr).toContain('does not exist');
    expect(result.stderr).toContain('--create-db');
  });

  it('should fail with one line and no stack trace when Postgres is unreachable', async () => {
    const result = await runWarden(['migrate'], { DATABASE_URL: UNREACHABLE_POSTGRES });
    expect(result.code).toBe(1);
    expectOneLineError(result);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('cannot connect to Postgres at postgres://127.0.0.1:1/x');
    expect(result.stdout).toBe('');
  });
});

describe('warden keys', () => {
  async function storedKeys(database: TestDatabase) {
    return database.db
      .selectFrom('api_keys')
      .select(['key_id', 'tenant_id', 'owner', 'key_hash', 'key_prefix', 'scopes', 'revoked_at'])
      .execute();
  }

  it('should print a key once whose hash is stored with the tenant and scopes', async () => {
    const database = await testDatabase();
    const result = await runWarden(
      [
        'keys',
        'create',
        '--tenant',
        'acme',
        '--scopes',
        'events:write, tasks:read',
        '--owner',
        'billing-agent',
        '--name',
        'ci',
      ],
      envFor(database),
    );
    expect(result.code).toBe(0);

    const keys = result.stdout.match(/wdn_[A-Za-z0-9_-]{24}/g) ?? [];
    expect(keys).toHaveLength(1);
    const key = keys[0]!;
    expect(result.stdout).toMatch(/cannot show it again/);

    const [row, ...others] = await storedKeys(database);
    expect(others).toEqual([]);
    expect(row).toMatchObject({
      tenant_id: 'acme',
      owner: 'billing-agent',
      key_hash: hashApiKey(key),
      scopes: ['events:write', 'tasks:read'],
      revoked_at: null,
    });
    expect(result.stdout).toContain(row!.key_id);
    const tenant = await database.db
      .selectFrom('tenants')
      .select('tenant_id')
      .where('tenant_id', '=', 'acme')
      .executeTakeFirst();
    expect(tenant).toBeDefined();
  });

  it('should print the key as JSON with --json and store nothing of it but its hash and prefix', async () => {
    const database = await testDatabase();
    const result = await runWarden(
      ['keys', 'create', '--tenant', 'beta', '--scopes', 'admin', '--owner', 'alice@example.com', '--json'],
      envFor(database),
    );
    expect(result.code).toBe(0);
    const printed = JSON.parse(result.stdout) as {
      key: string;
      key_id: string;
      tenant_id: string;
      scopes: string[];
      owner: string;
    };
    expect(printed).toEqual({
      key: expect.stringMatching(/^wdn_/),
      key_id: expect.any(String),
      tenant_id: 'beta',
      scopes: ['admin'],
      owner: 'alice@example.com',
    });

    const { rows } = await sql<{ row: string }>`select row_to_json(k)::text as row from api_keys k`.execute(
      database.db,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.row).toContain(hashApiKey(printed.key));
    expect(rows[0]!.row).not.toContain(printed.key);
  });

  it('should refuse an unknown scope with exit 2, listing the valid scopes, and store nothing', async () => {
    const database = await testDatabase();
    const result = await runWarden(
      ['keys', 'create', '--tenant', 'acme', '--scopes', 'events:write,events:delete', '--owner', 'ci'],
      envFor(database),
    );
    expect(result.code).toBe(2);
    expectOneLineError(result);
    expect(result.stderr).toContain('"events:delete"');
    for (const scope of SCOPES) expect(result.stderr).toContain(scope);
    expect(await storedKeys(database)).toEqual([]);
  });

  // Separation of duties: an agent's key (events:write) must not release its own gates or approve its own work.
  it.each([
    ['events:write,tasks:approve', ['"events:write"', '"tasks:approve"']],
    ['events:write, changesets:approve', ['"events:write"', '"changesets:approve"']],
    ['events:write,triggers:approve', ['"events:write"', '"triggers:approve"']],
    ['admin,events:write', ['"events:write"', '"admin"']],
  ])(
    'should refuse an agent key with an approving scope (%s) with exit 2, naming both, and store nothing',
    async (scopes, named) => {
      const database = await testDatabase();
      const result = await runWarden(
        ['keys', 'create', '--tenant', 'acme', '--scopes', scopes, '--owner', 'billing-agent'],
        envFor(database),
      );
      expect(result.code).toBe(2);
      expectOneLineError(result);
      expect(result.stderr).toMatch(/separation of duties/);
      for (const scope of named) expect(result.stderr).toContain(scope);
      expect(await storedKeys(database)).toEqual([]);
    },
  );

  it('should refuse the retired tasks:write scope, pointing at tasks:approve', async () => {
    const database = await testDatabase();
    const result = await runWarden(
      ['keys', 'create', '--tenant', 'acme', '--scopes', 'tasks:read,tasks:write', '--owner', 'alice'],
      envFor(database),
    );
    expect(result.code).toBe(2);
    expectOneLineError(result);
    expect(result.stderr).toMatch(/"tasks:write" was retired/);
    expect(result.stderr).toContain('"tasks:approve"');
    expect(await storedKeys(database)).toEqual([]);
  });

  it('should refuse a key without an owner, or with a blank one', async () => {
    const database = await testDatabase();
    const [missing, blank] = await Promise.all([
      runWarden(['keys', 'create', '--tenant', 'acme', '--scopes', 'tasks:read'], envFor(database)),
      runWarden(
        ['keys', 'create', '--tenant', 'acme', '--scopes', 'tasks:read', '--owner', '  '],
        envFor(database),
      ),
    ]);
    for (const result of [missing, blank]) {
      expect(result.code).toBe(2);
      expectOneLineError(result);
    }
    expect(missing.stderr).toContain('--owner');
    expect(blank.stderr).toMatch(/--owner/);
    expect(await storedKeys(database)).toEqual([]);
  });

  it(
    'should list keys without a secret, by tenant, with effective scopes, revoked ones on request',
    async () => {
      const database = await testDatabase();
      const alice = await createApiKey({
        databaseUrl: database.url,
        tenantId: 'acme',
        scopes: ['tasks:read'],
        owner: 'alice',
      });
      const bot = await createApiKey({
        databaseUrl: database.url,
        tenantId: 'acme',
        scopes: ['events:write'],
        owner: 'billing-bot',
      });
      await createApiKey({ databaseUrl: database.url, tenantId: 'globex', scopes: ['admin'], owner: 'gina' });
      // A row written around insertApiKey (an old backup): it writes events and approves.
      await sql`update api_keys set scopes = '{events:write,tasks:approve}' where key_id = ${bot.keyId}`.execute(
        database.db,
      );
      expect((await runWarden(['keys', 'revoke', alice.keyId], envFor(database))).code).toBe(0);

      const live = await runWarden(['keys', 'list', '--tenant', 'acme', '--json'], envFor(database));
      expect(live.code).toBe(0);
      const rows = JSON.parse(live.stdout) as Array<Record<string, unknown>>;
      expect(rows).toEqual([
        expect.objectContaining({
          key_id: bot.keyId,
          tenant_id: 'acme',
          owner: 'billing-bot',
          scopes: ['events:write'],
        }),
      ]);
      expect(live.stdout).not.toContain(bot.key);
      expect(live.stdout).not.toMatch(/key_hash/);

      const all = await runWarden(['keys', 'list', '--revoked'], envFor(database));
      expect(all.code).toBe(0);
      expect(all.stdout).toMatch(/^KEY ID\s+TENANT\s+NAME\s+OWNER\s+PREFIX\s+SCOPES\s+CREATED\s+REVOKED/);
      for (const owner of ['alice', 'billing-bot', 'gina']) expect(all.stdout).toContain(owner);
    },
    SEVERAL_PROCESSES_TIMEOUT_MS,
  );

  it(
    'should revoke a key, then fail to revoke it a second time',
    async () => {
      const database = await testDatabase();
      const { keyId } = await createApiKey({
        databaseUrl: database.url,
        tenantId: 'acme',
        scopes: ['tasks:read'],
        owner: 'alice',
      });

      const revoked = await runWarden(['keys', 'revoke', keyId], envFor(database));
      expect(revoked.code).toBe(0);
      const [row] = await storedKeys(database);
      expect(row!.revoked_at).toBeInstanceOf(Date);

      const again = await runWarden(['keys', 'revoke', keyId], envFor(database));
      expect(again.code).toBe(1);
      expectOneLineError(again);
    },
    SEVERAL_PROCESSES_TIMEOUT_MS,
  );
});

describe('warden preflight', () => {
  async function writeScratch(name: string, text: string): Promise<string> {
    const file = join(scratchDir, name);
    await writeFile(file, text);
    return file;
  }

  it('should pass on a migrated database with the real policy file', async () => {
    const database = await testDatabase();
    const result = await runWarden(['preflight'], envFor(database));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/all \d+ checks passed/);

    const report = await runPreflight({ env: envFor(database), cwd: repoRoot });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => c.name)).toEqual([
      'configuration',
      ...SERVICE_NAMES.map((service) => `env ${service}`),
      'supervisor policy',
      'writegate policy',
      'lead rules',
      'postgres',
      'migrations',
      'redis',
      ...ALL_QUEUE_NAMES.map((name) => `queue ${name}`),
      'executor sandbox',
    ]);
    expect(check(report, 'supervisor policy').reason).toContain('infra/policies/supervisor.yaml');
  });

  describe('the executor sandbox check', () => {
    const probes = (has: { bwrap?: boolean; prlimit?: boolean; root?: boolean }) => ({
      bubblewrap: () => (has.bwrap ? '/usr/bin/bwrap' : undefined),
      prlimit: () => (has.prlimit ? '/usr/bin/prlimit' : undefined),
      isRoot: () => has.root ?? false,
    });
    const sandboxCheck = async (has: Parameters<typeof probes>[0], env: Record<string, string> = {}) => {
      const database = await testDatabase();
      const report = await runPreflight({
        env: envFor(database, env),
        cwd: repoRoot,
        sandboxProbes: probes(has),
      });
      return { report, sandbox: check(report, 'executor sandbox') };
    };

    it('should pass when bubblewrap and prlimit work', async () => {
      const { sandbox } = await sandboxCheck({ bwrap: true, prlimit: true });
      expect(sandbox).toMatchObject({ status: 'ok', reason: expect.stringContaining('/usr/bin/bwrap') });
    });

    it('should warn, not fail, when verifications would run without isolation or as root', async () => {
      const { report, sandbox } = await sandboxCheck({ bwrap: false, prlimit: true, root: true });
      expect(sandbox).toMatchObject({
        status: 'warn',
        reason: expect.stringMatching(/bubblewrap.*install.*EXECUTOR_RUN_AS/),
      });
      expect(report.ok).toBe(true);
      expect(formatPreflightReport(report)).toMatch(/checks passed \(1 warning\)/);
    });

    it('should warn when EXECUTOR_SANDBOX=none turns isolation off', async () => {
      const { sandbox } = await sandboxCheck({ bwrap: true, prlimit: true }, { EXECUTOR_SANDBOX: 'none' });
      expect(sandbox).toMatchObject({
        status: 'warn',
        reason: expect.stringContaining('EXECUTOR_SANDBOX=none'),
      });
    });

    it('should fail when EXECUTOR_SANDBOX=bwrap demands a bubblewrap that does not work here', async () => {
      const { report, sandbox } = await sandboxCheck(
        { bwrap: false, prlimit: true },
        { EXECUTOR_SANDBOX: 'bwrap' },
      );
      expect(sandbox).toMatchObject({
        status: 'fail',
        reason: expect.stringContaining('EXECUTOR_SANDBOX=bwrap'),
      });
      expect(report.ok).toBe(false);
    });
  });

  it('should name the failing field of a broken policy file', async () => {
    const database = await testDatabase();
    const file = await writeScratch('bad-threshold.yaml', 'thresholds:\n  error_rate: 7\n');
    const report = await runPreflight({ env: envFor(database), cwd: repoRoot, supervisorPolicyFile: file });
    expect(report.ok).toBe(false);
    expect(check(report, 'supervisor policy')).toMatchObject({
      status: 'fail',
      reason: expect.stringContaining('thresholds.error_rate'),
    });
    // One bad file is one problem: the servers are still checked and pass.
    expect(report.problems).toHaveLength(1);
    expect(check(report, 'migrations').status).toBe('ok');
  });

  it.each([
    [
      'writegate policy',
      'WRITEGATE_POLICY_FILE',
      'constraints:\n  max_files_touched: -3\n',
      'constraints.max_files_touched',
    ],
    ['lead rules', 'LEAD_RULES_FILE', 'no_such_rule: {}\n', 'no_such_rule'],
  ])('should validate the %s file named by %s', async (name, variable, text, path) => {
    const database = await testDatabase();
    const file = await writeScratch(`${variable}.yaml`, text);
    const report = await runPreflight({ env: { ...envFor(database), [variable]: file }, cwd: repoRoot });
    expect(check(report, name)).toMatchObject({ status: 'fail', reason: expect.stringContaining(path) });
    expect(report.problems).toHaveLength(1);
  });

  it('should name the line of a YAML syntax error', async () => {
    const database = await testDatabase();
    const file = await writeScratch('syntax.yaml', 'thresholds:\n  error_rate: [0.3\n');
    const report = await runPreflight({ env: envFor(database), cwd: repoRoot, supervisorPolicyFile: file });
    expect(check(report, 'supervisor policy')).toMatchObject({
      status: 'fail',
      reason: expect.stringMatching(/line \d+/),
    });
  });

  it('should report a policy file that does not exist', async () => {
    const database = await testDatabase();
    const report = await runPreflight({
      env: envFor(database),
      cwd: repoRoot,
      supervisorPolicyFile: join(scratchDir, 'missing.yaml'),
    });
    expect(check(report, 'supervisor policy')).toMatchObject({
      status: 'fail',
      reason: expect.stringContaining('does not exist'),
    });
  });

  it('should fail fast with exit 1 when Redis is unreachable', async () => {
    const database = await testDatabase();
    const result = await runWarden(
      ['preflight', '--json'],
      envFor(database, { REDIS_URL: UNREACHABLE_REDIS }),
    );
    expect(result.code).toBe(1);
    expectOneLineError(result);
    const report = JSON.parse(result.stdout) as {
      ok: boolean;
      checks: PreflightCheck[];
      duration_ms: number;
    };
    expect(report.ok).toBe(false);
    const byName = new Map(report.checks.map((c) => [c.name, c]));
    expect(byName.get('redis')).toMatchObject({
      status: 'fail',
      reason: expect.stringContaining('127.0.0.1:1'),
    });
    expect(byName.get('queue supervisor-events')?.status).toBe('skip');
    expect(byName.get('postgres')?.status).toBe('ok');
    expect(report.duration_ms).toBeLessThan(5000);
    // Node start-up and TypeScript loading dominate; the checks themselves must not wait on retries.
    expect(result.elapsedMs).toBeLessThan(20_000);
  });

  it('should list the pending migrations of a database that is behind', async () => {
    const database = await testDatabase({ migrated: false });
    const report = await runPreflight({ env: envFor(database), cwd: repoRoot });
    expect(report.ok).toBe(false);
    const migrationsCheck = check(report, 'migrations');
    expect(migrationsCheck.status).toBe('fail');
    for (const name of Object.keys(migrations)) expect(migrationsCheck.reason).toContain(name);
    expect(migrationsCheck.reason).toContain('warden migrate');
  });

  it('should skip the migrations check when Postgres is unreachable, saying so', async () => {
    const report = await runPreflight({ env: envFor({ url: UNREACHABLE_POSTGRES }), cwd: repoRoot });
    expect(check(report, 'postgres').status).toBe('fail');
    expect(check(report, 'migrations')).toMatchObject({
      status: 'skip',
      reason: expect.stringContaining('Postgres is unreachable'),
    });
    expect(check(report, 'redis').status).toBe('ok');
    expect(report.problems).toHaveLength(1);
  });

  it('should report an invalid variable and still check everything that does not depend on it', async () => {
    const database = await testDatabase();
    const report = await runPreflight({ env: envFor(database, { REDIS_URL: 'not a url' }), cwd: repoRoot });
    expect(check(report, 'configuration')).toMatchObject({
      status: 'fail',
      reason: expect.stringContaining('REDIS_URL'),
    });
    expect(check(report, 'redis').status).toBe('skip');
    expect(check(report, 'migrations').status).toBe('ok');
  });

  describe("when a variable is one a service's own schema refuses", () => {
    it('should name the variable, the service and the schema message for each service that reads it', async () => {
      const database = await testDatabase();
      const result = await runWarden(
        ['preflight', '--json'],
        envFor(database, { LOG_LEVEL: 'loud', EXECUTOR_SANDBOX_PATH: 'usr/bin' }),
      );
      expect(result.code).toBe(1);
      expectOneLineError(result);
      const report = JSON.parse(result.stdout) as {
        ok: boolean;
        checks: PreflightCheck[];
        problems: string[];
      };
      expect(report.ok).toBe(false);
      // LOG_LEVEL is read by every service; the CLI's own configuration does not read it, and used to pass it.
      for (const service of SERVICE_NAMES) {
        const env = check(report as PreflightReport, `env ${service}`);
        expect(env.status).toBe('fail');
        expect(env.issues).toContainEqual({
          service,
          variable: 'LOG_LEVEL',
          message: expect.stringContaining('"info"'),
        });
      }
      expect(check(report as PreflightReport, 'configuration').status).toBe('ok');
      // A variable of one service only is reported for that service only.
      expect(check(report as PreflightReport, 'env executor').issues).toContainEqual({
        service: 'executor',
        variable: 'EXECUTOR_SANDBOX_PATH',
        message: 'every directory must be absolute',
      });
      expect(check(report as PreflightReport, 'env api').issues).toHaveLength(1);
      expect(report.problems).toContainEqual(expect.stringMatching(/^env scheduler: .*LOG_LEVEL: /));
    });

    it('should report a bad REDIS_URL for each service, and in the table', async () => {
      const database = await testDatabase();
      const report = await runPreflight({ env: envFor(database, { REDIS_URL: 'not a url' }), cwd: repoRoot });
      for (const service of SERVICE_NAMES) {
        expect(check(report, `env ${service}`).issues).toEqual([
          { service, variable: 'REDIS_URL', message: expect.any(String) },
        ]);
      }
      expect(formatPreflightReport(report)).toMatch(/- env lead-miner: 1 variable refused: REDIS_URL: /);
    });

    it('should check only the service named by --service', async () => {
      const database = await testDatabase();
      const env = envFor(database, { EXECUTOR_CONCURRENCY: '1000' });
      const [executor, api] = await Promise.all([
        runPreflight({ env, cwd: repoRoot, services: ['executor'] }),
        runPreflight({ env, cwd: repoRoot, services: ['api'] }),
      ]);
      expect(executor.checks.filter((c) => c.name.startsWith('env ')).map((c) => c.name)).toEqual([
        'env executor',
      ]);
      expect(check(executor, 'env executor').issues).toEqual([
        { service: 'executor', variable: 'EXECUTOR_CONCURRENCY', message: expect.stringContaining('64') },
      ]);
      expect(executor.ok).toBe(false);
      expect(check(api, 'env api').status).toBe('ok');
      expect(api.ok).toBe(true);
    });

    it('should exit 2 naming the services when --service names none of them', async () => {
      const result = await runWarden(['preflight', '--service', 'apii']);
      expect(result.code).toBe(2);
      expectOneLineError(result);
      expect(result.stderr).toContain('--service "apii"');
      expect(result.stderr).toContain('supervisor-worker');
    });
  });
});

describe('warden usage', () => {
  it(
    'should exit 2 on an unknown command or option, with one line and no stack trace',
    async () => {
      const [command, option, missing] = await Promise.all([
        runWarden(['frobnicate']),
        runWarden(['migrate', '--frobnicate']),
        runWarden(['keys', 'create', '--tenant', 'acme']),
      ]);
      for (const result of [command, option, missing]) {
        expect(result.code).toBe(2);
        expectOneLineError(result);
      }
      expect(missing.stderr).toContain('--scopes');
    },
    SEVERAL_PROCESSES_TIMEOUT_MS,
  );

  it(
    'should print help for every command through the installed launcher',
    async () => {
      const launcher = ['packages/cli/bin/warden.mjs'];
      const commands = [[], ['migrate'], ['keys', 'create'], ['keys', 'revoke'], ['preflight']];
      const results = await Promise.all(
        commands.map((command) => runWarden([...command, '--help'], {}, launcher)),
      );
      for (const [index, result] of results.entries()) {
        expect(result.code).toBe(0);
        expect(result.stdout).toContain(`Usage: warden ${commands[index]!.join(' ')}`.trim());
      }
    },
    SEVERAL_PROCESSES_TIMEOUT_MS,
  );
});
