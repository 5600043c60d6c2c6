/**
 * `warden preflight`: everything that must hold before Warden starts, checked at once and reported
 * together, so an operator fixes all problems in one round instead of one per restart.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { pendingMigrations, type Db } from '@warden/db';
import type { z } from 'zod';
import {
  LeadRulesFileSchema,
  parsePolicyYaml,
  SupervisorPolicyFileSchema,
  ValidationError,
  WriteGatePolicySchema,
} from '@warden/domain';
import { ALL_QUEUE_NAMES, createRedis, pingRedis, WardenQueues, type QueueName } from '@warden/queue';
import { probeBubblewrap, probePrlimit } from '@warden/runtime/sandbox-probe';
import { SERVICE_NAMES, type ServiceName } from '@warden/config';
import { inspectConfig, type CliEnvironment } from '../config.js';
import { CommandFailedError, describeError } from '../errors.js';
import { describeUrl, plural, writeJson, type CliIo } from '../output.js';
import { closePostgres, connectPostgres } from '../postgres.js';
import { withTimeout } from '../timeout.js';
import { checkServiceEnvironments, parseServiceName, type EnvIssue } from './service-env.js';

export type CheckStatus =
  | 'ok'
  | 'fail'
  /** Not run because a check it depends on failed (that failure is the problem to fix). */
  | 'skip'
  /** Works, but weaker than production needs (e.g. verifications without isolation); does not fail preflight. */
  | 'warn';

export interface PreflightCheck {
  /** `configuration`, `env <service>`, `supervisor policy`, `writegate policy`, `lead rules`, `postgres`, `migrations`, `redis`, `queue <name>`, `executor sandbox`. */
  name: string;
  status: CheckStatus;
  /** Why it passed (what was found) or why it did not. One line. */
  reason: string;
  /** For an `env <service>` check: each variable that service would refuse, with its schema's message. */
  issues?: EnvIssue[];
}

export interface PreflightReport {
  /** True when no check failed. */
  ok: boolean;
  /** Every check, in a fixed order, whatever happened to the others. */
  checks: PreflightCheck[];
  /** `name: reason` of each failed check. */
  problems: string[];
  durationMs: number;
}

export interface PreflightOptions {
  /** Variables the configuration is read from. @defaultValue `process.env` */
  env?: NodeJS.ProcessEnv;
  /** Directory relative file paths resolve against. @defaultValue `process.cwd()` */
  cwd?: string;
  /** Supervisor policy file to validate. @defaultValue `SUPERVISOR_POLICY_FILE` from the configuration */
  supervisorPolicyFile?: string;
  /** Longest wait for any one server (connect, or one request) before its check fails. @defaultValue `3000` */
  timeoutMs?: number;
  /** How the executor sandbox is probed. @defaultValue the real probes (bwrap and prlimit on this host) */
  sandboxProbes?: SandboxProbes;
  /** Services whose environment schema the environment is checked against. @defaultValue every service */
  services?: readonly ServiceName[];
}

const DEFAULT_TIMEOUT_MS = 3000;

/**
 * Runs every check and returns the report; never throws for a failed check. The file check and the two
 * server groups (Postgres → migrations, Redis → queues) run side by side, each bounded by `timeoutMs`,
 * so an unreachable host costs at most one timeout. Every client it opens is closed before it returns.
 *
 * @example
 * const report = await runPreflight({ env: { DATABASE_URL: url, REDIS_URL: 'redis://127.0.0.1:6379' } });
 * if (!report.ok) console.error(report.problems.join('\n'));
 */
export async function runPreflight(options: PreflightOptions = {}): Promise<PreflightReport> {
  const started = performance.now();
  const environment: CliEnvironment = { env: options.env ?? process.env, cwd: options.cwd ?? process.cwd() };
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  const inspection = inspectConfig(environment);
  const { fields } = inspection;
  const configuration: PreflightCheck = inspection.error
    ? { name: 'configuration', status: 'fail', reason: inspection.error.message }
    : {
        name: 'configuration',
        status: 'ok',
        reason: `DATABASE_URL ${describeUrl(fields.DATABASE_URL ?? '')}, REDIS_URL ${describeUrl(fields.REDIS_URL ?? '')}, QUEUE_PREFIX ${fields.QUEUE_PREFIX}`,
      };
  const policyFile =
    options.supervisorPolicyFile === undefined
      ? fields.SUPERVISOR_POLICY_FILE
      : resolve(environment.cwd, options.supervisorPolicyFile);

  const [policy, writeGate, leadRules, postgres, redis] = await Promise.all([
    checkPolicyFile(
      'supervisor policy',
      'SUPERVISOR_POLICY_FILE',
      policyFile,
      SupervisorPolicyFileSchema,
      environment.cwd,
    ),
    checkPolicyFile(
      'writegate policy',
      'WRITEGATE_POLICY_FILE',
      fields.WRITEGATE_POLICY_FILE,
      WriteGatePolicySchema,
      environment.cwd,
    ),
    checkPolicyFile(
      'lead rules',
      'LEAD_RULES_FILE',
      fields.LEAD_RULES_FILE,
      LeadRulesFileSchema,
      environment.cwd,
    ),
    checkPostgres(fields.DATABASE_URL, timeoutMs),
    checkRedis(fields.REDIS_URL, fields.QUEUE_PREFIX, timeoutMs),
  ]);

  const checks = [
    configuration,
    ...checkServiceEnvironments(environment.env, options.services),
    policy,
    writeGate,
    leadRules,
    ...postgres,
    ...redis,
    checkExecutorSandbox(environment.env, options.sandboxProbes),
  ];
  const problems = checks
    .filter((check) => check.status === 'fail')
    .map((check) => `${check.name}: ${check.reason}`);
  return { ok: problems.length === 0, checks, problems, durationMs: Math.round(performance.now() - started) };
}

/** Reads one policy file and validates it with the schema its service uses at start-up. */
async function checkPolicyFile(
  name: string,
  variable: string,
  file: string | undefined,
  schema: z.ZodType,
  cwd: string,
): Promise<PreflightCheck> {
  if (file === undefined) return { name, status: 'skip', reason: `${variable} is invalid` };
  const shown = displayPath(file, cwd);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return {
      name,
      status: 'fail',
      reason: code === 'ENOENT' ? `${shown} does not exist` : `${shown}: ${describeError(error)}`,
    };
  }
  try {
    const parsed = parsePolicyYaml(text, schema, shown) as { version?: unknown };
    return {
      name,
      status: 'ok',
      reason: `${shown} is valid${parsed.version === undefined ? '' : ` (version ${String(parsed.version)})`}`,
    };
  } catch (error) {
    // parsePolicyYaml's message already names the file and each field path or YAML line.
    const reason = error instanceof ValidationError ? error.message : `${shown}: ${describeError(error)}`;
    return { name, status: 'fail', reason };
  }
}

async function checkPostgres(url: string | undefined, timeoutMs: number): Promise<PreflightCheck[]> {
  if (url === undefined) {
    return [
      { name: 'postgres', status: 'skip', reason: 'DATABASE_URL is invalid' },
      { name: 'migrations', status: 'skip', reason: 'DATABASE_URL is invalid' },
    ];
  }
  let db: Db;
  try {
    db = await connectPostgres(url, timeoutMs);
  } catch (error) {
    return [
      { name: 'postgres', status: 'fail', reason: describeError(error) },
      { name: 'migrations', status: 'skip', reason: 'not checked: Postgres is unreachable' },
    ];
  }
  try {
    const version = await withTimeout(serverVersion(db), timeoutMs, 'reading the server version').catch(
      () => 'version unknown',
    );
    const postgres: PreflightCheck = {
      name: 'postgres',
      status: 'ok',
      reason: `reachable at ${describeUrl(url)} (PostgreSQL ${version})`,
    };
    return [postgres, await checkMigrations(db, timeoutMs)];
  } finally {
    await closePostgres(db);
  }
}

async function serverVersion(db: Db): Promise<string> {
  const row = await db
    .selectNoFrom((eb) => eb.fn<string>('current_setting', [eb.val('server_version')]).as('version'))
    .executeTakeFirstOrThrow();
  return row.version;
}

async function checkMigrations(db: Db, timeoutMs: number): Promise<PreflightCheck> {
  const name = 'migrations';
  try {
    const pending = await withTimeout(pendingMigrations(db), timeoutMs, 'reading the migration table');
    if (pending.length === 0) return { name, status: 'ok', reason: 'database is current' };
    return {
      name,
      status: 'fail',
      reason: `database is behind: ${plural(pending.length, 'pending migration')} (${pending.join(', ')}); run \`warden migrate\``,
    };
  } catch (error) {
    return { name, status: 'fail', reason: describeError(error) };
  }
}

async function checkRedis(
  url: string | undefined,
  prefix: string | undefined,
  timeoutMs: number,
): Promise<PreflightCheck[]> {
  const queueChecks = (status: CheckStatus, reason: string): PreflightCheck[] =>
    ALL_QUEUE_NAMES.map((queue) => ({ name: `queue ${queue}`, status, reason }));
  if (url === undefined)
    return [
      { name: 'redis', status: 'skip', reason: 'REDIS_URL is invalid' },
      ...queueChecks('skip', 'REDIS_URL is invalid'),
    ];

  // The default clients reconnect forever, which would hang preflight on a dead host: this one tries once.
  const redis = createRedis(url, 'general', {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  // ioredis rejects with a bare "Connection is closed."; the socket's own error says why (ECONNREFUSED…).
  let socketError: unknown;
  redis.on('error', (error: unknown) => {
    socketError ??= error;
  });
  let queues: WardenQueues | undefined;
  try {
    try {
      await withTimeout(redis.connect(), timeoutMs, 'connecting');
      await withTimeout(pingRedis(redis), timeoutMs, 'PING');
    } catch (error) {
      const reason = `cannot connect to Redis at ${describeUrl(url)}: ${describeError(socketError ?? error)}`;
      return [
        { name: 'redis', status: 'fail', reason },
        ...queueChecks('skip', 'not checked: Redis is unreachable'),
      ];
    }
    const redisCheck = await describeRedisServer(redis, url, timeoutMs);

    const opened = new WardenQueues({ connection: redis, ...(prefix === undefined ? {} : { prefix }) });
    queues = opened;
    const results = await Promise.all(ALL_QUEUE_NAMES.map((queue) => checkQueue(opened, queue, timeoutMs)));
    return [redisCheck, ...results];
  } finally {
    if (queues) await withTimeout(queues.close(), timeoutMs, 'closing queues').catch(() => {});
    redis.disconnect();
  }
}

/**
 * Reads the server version and eviction policy. BullMQ loses jobs under any policy but `noeviction`, so
 * another policy fails the check; managed Redis services that forbid CONFIG leave the policy unknown.
 */
async function describeRedisServer(
  redis: ReturnType<typeof createRedis>,
  url: string,
  timeoutMs: number,
): Promise<PreflightCheck> {
  const name = 'redis';
  const where = `reachable at ${describeUrl(url)}`;
  const info = await withTimeout(redis.info('server'), timeoutMs, 'INFO').catch(() => '');
  const version = /redis_version:(\S+)/.exec(info)?.[1];
  const found = version ? `${where} (Redis ${version})` : where;
  let policy: string | undefined;
  try {
    const reply = (await withTimeout(
      redis.config('GET', 'maxmemory-policy'),
      timeoutMs,
      'CONFIG GET',
    )) as unknown;
    if (Array.isArray(reply) && typeof reply[1] === 'string') policy = reply[1];
  } catch {
    policy = undefined;
  }
  if (policy !== undefined && policy !== 'noeviction') {
    return {
      name,
      status: 'fail',
      reason: `${found}, but maxmemory-policy is ${policy}; BullMQ needs noeviction or Redis may evict jobs`,
    };
  }
  return { name, status: 'ok', reason: policy === undefined ? `${found}, eviction policy unknown` : found };
}

async function checkQueue(queues: WardenQueues, name: QueueName, timeoutMs: number): Promise<PreflightCheck> {
  const queue = queues.get(name);
  try {
    const [counts, paused] = await withTimeout(
      Promise.all([queue.getJobCounts('waiting', 'active', 'delayed', 'failed'), queue.isPaused()]),
      timeoutMs,
      'reading job counts',
    );
    const summary = Object.entries(counts)
      .map(([state, count]) => `${state} ${count}`)
      .join(', ');
    return { name: `queue ${name}`, status: 'ok', reason: `${summary}${paused ? ', paused' : ''}` };
  } catch (error) {
    return { name: `queue ${name}`, status: 'fail', reason: describeError(error) };
  }
}

/** How the sandbox is probed; replaceable in tests. @defaultValue the real probes of `@warden/runtime` */
export interface SandboxProbes {
  bubblewrap: () => string | undefined;
  prlimit: () => string | undefined;
  isRoot: () => boolean;
}

const realSandboxProbes: SandboxProbes = {
  bubblewrap: () => probeBubblewrap(),
  prlimit: () => probePrlimit(),
  isRoot: () => process.getuid?.() === 0,
};

/**
 * The sandbox an executor on this host would give verifications (docs/executor.md, "Sandbox"): a `warn`, not a
 * failure, when it would run them degraded — the executor starts anyway in the default `auto` mode — and a
 * failure when `EXECUTOR_SANDBOX=bwrap` demands bubblewrap that does not work here (the executor would refuse to
 * start).
 */
function checkExecutorSandbox(
  env: NodeJS.ProcessEnv,
  probes: SandboxProbes = realSandboxProbes,
): PreflightCheck {
  const name = 'executor sandbox';
  const mode = env.EXECUTOR_SANDBOX ?? 'auto';
  if (!['auto', 'bwrap', 'none'].includes(mode))
    return { name, status: 'fail', reason: `EXECUTOR_SANDBOX="${mode}": expected auto, bwrap or none` };
  const bubblewrap = mode === 'none' ? undefined : probes.bubblewrap();
  const prlimit = probes.prlimit();
  const weaknesses: string[] = [];
  if (mode === 'none') weaknesses.push('EXECUTOR_SANDBOX=none turns isolation off');
  else if (!bubblewrap)
    weaknesses.push(
      "bubblewrap (bwrap) is missing or may not create namespaces here: install Debian's bubblewrap package",
    );
  if (!prlimit) weaknesses.push('prlimit is missing: no CPU, memory or process limits (util-linux)');
  if (probes.isRoot() && env.EXECUTOR_RUN_AS === undefined)
    weaknesses.push('verifications would run as root: set EXECUTOR_RUN_AS');
  if (mode === 'bwrap' && !bubblewrap)
    return { name, status: 'fail', reason: `EXECUTOR_SANDBOX=bwrap but ${weaknesses[0]}` };
  if (weaknesses.length > 0)
    return { name, status: 'warn', reason: `verifications would run degraded: ${weaknesses.join('; ')}` };
  return { name, status: 'ok', reason: `bwrap ${bubblewrap} and prlimit ${prlimit} work here` };
}

function displayPath(file: string, cwd: string): string {
  const inside = relative(cwd, file);
  return inside !== '' && !inside.startsWith('..') && !isAbsolute(inside) ? inside : file;
}

/** The report as a table, then the problems, for a person at a terminal. */
export function formatPreflightReport(report: PreflightReport): string {
  const width = Math.max(...report.checks.map((check) => check.name.length));
  const lines = report.checks.map(
    (check) => `  ${check.status.padEnd(4)}  ${check.name.padEnd(width)}  ${check.reason}`,
  );
  const warnings = report.checks.filter((check) => check.status === 'warn').length;
  if (report.ok) {
    lines.push(
      `all ${report.checks.length} checks passed${warnings > 0 ? ` (${plural(warnings, 'warning')})` : ''} (${report.durationMs} ms)`,
    );
  } else {
    lines.push(
      '',
      `${plural(report.problems.length, 'problem')}:`,
      ...report.problems.map((problem) => `  - ${problem}`),
    );
  }
  return lines.join('\n') + '\n';
}

export function registerPreflightCommand(program: Command, environment: CliEnvironment, io: CliIo): void {
  program
    .command('preflight')
    .description(
      "check configuration (against each service's own schema), policy files, Postgres, migrations, Redis and queues; exit 1 listing what is wrong",
    )
    .option(
      '--supervisor-policy <file>',
      'supervisor policy file to validate (default: $SUPERVISOR_POLICY_FILE or infra/policies/supervisor.yaml)',
    )
    .option(
      '--service <name>',
      `check the environment against this service's schema only (${SERVICE_NAMES.join(', ')}; default: every service)`,
    )
    .option('--json', 'print the report as JSON')
    .action(async (flags: { supervisorPolicy?: string; service?: string; json?: boolean }) => {
      const services = flags.service === undefined ? undefined : [parseServiceName(flags.service)];
      const report = await runPreflight({
        env: environment.env,
        cwd: environment.cwd,
        ...(services === undefined ? {} : { services }),
        ...(flags.supervisorPolicy === undefined ? {} : { supervisorPolicyFile: flags.supervisorPolicy }),
      });
      if (flags.json) {
        writeJson(io, {
          ok: report.ok,
          checks: report.checks,
          problems: report.problems,
          duration_ms: report.durationMs,
        });
      } else {
        io.out(formatPreflightReport(report));
      }
      if (!report.ok) {
        const failed = report.checks.filter((check) => check.status === 'fail').map((check) => check.name);
        throw new CommandFailedError(
          `preflight found ${plural(failed.length, 'problem')} (${failed.join(', ')})`,
        );
      }
    });
}
