/**
 * `warden lead scan`: runs a lead scan in this process — the same runLeadScan of @warden/lead-engine the
 * lead-miner service runs for queued and scheduled scans — and prints what it found (docs/lead-miner.md).
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { z } from 'zod';
import { assertMigrationsCurrent, listLeadScanTenants, type Db } from '@warden/db';
import {
  LEAD_SCAN_SKIPPED_MESSAGE,
  LeadRulesFileSchema,
  TenantIdSchema,
  parseLeadWindow,
  parseOrThrow,
  parsePolicyYaml,
  type LeadRulesFile,
  type LeadScanProgress,
  type LeadScanReport,
} from '@warden/domain';
import {
  LeadScanFailedError,
  redlockLeadScanLock,
  runLeadScan,
  type LeadScanLock,
} from '@warden/lead-engine';
import { createRedis, createRedlock, pingRedis } from '@warden/queue/locks';
import { loadConfig, type CliEnvironment } from '../config.js';
import { CommandFailedError, UsageError, describeError } from '../errors.js';
import { describeUrl, plural, writeJson, type CliIo } from '../output.js';
import { closePostgres, connectPostgres } from '../postgres.js';
import { withTimeout } from '../timeout.js';

type Redis = ReturnType<typeof createRedis>;

/** The rules file when neither `--config` nor `LEAD_RULES_FILE` names one. */
export const DEFAULT_LEAD_RULES_FILE = 'infra/policies/lead-rules.yaml';

// LEAD_RULES_FILE is the lead-miner's variable; the CLI honours it too so both read the same file.
const leadEnvSchema = z.object({ LEAD_RULES_FILE: z.string().min(1).optional() });

export interface LeadScanCommandOptions {
  databaseUrl: string;
  redisUrl: string;
  /**
   * The servers the lead miner takes its scan locks on (`REDLOCK_URLS`); the CLI must use the same ones, or
   * its lock would not keep a service scan out. @defaultValue `[]`: the lock is on `redisUrl`
   */
  lockUrls?: readonly string[];
  /** The installation's queue prefix: the namespace of the lock keys. @defaultValue `warden` */
  queuePrefix?: string;
  window: string;
  rules: LeadRulesFile;
  /** Only this tenant. @defaultValue every tenant with API keys or an audit trail */
  tenantId?: string;
  /** @defaultValue `false` */
  dryRun?: boolean;
  /** Skip the single-flight lock (and Redis). @defaultValue `false` */
  force?: boolean;
  onProgress?: (tenantId: string, progress: LeadScanProgress) => void;
  /** How long to wait for Redis to answer before giving up. @defaultValue `3000` */
  redisTimeoutMs?: number;
}

export interface LeadScanCommandResult {
  reports: LeadScanReport[];
  /** Tenants whose scan failed, with why. */
  failures: Array<{ tenant_id: string; error: string }>;
}

/**
 * Scans one tenant, or every tenant in turn. Never throws for a scan that failed once it started (its report
 * is in `reports` with status `failed`); throws a CommandFailedError when Postgres or Redis cannot be used.
 */
export async function runLeadScanCommand(options: LeadScanCommandOptions): Promise<LeadScanCommandResult> {
  const db = await connectPostgres(options.databaseUrl);
  const lockRedis: Redis[] = [];
  try {
    await assertMigrationsCurrent(db);
    let lock: LeadScanLock | undefined;
    if (!options.force) {
      const urls = options.lockUrls?.length ? options.lockUrls : [options.redisUrl];
      for (const url of urls) lockRedis.push(await connectRedis(url, options.redisTimeoutMs ?? 3000));
      lock = redlockLeadScanLock(createRedlock(lockRedis));
    }
    const tenants = options.tenantId ? [options.tenantId] : await listLeadScanTenants(db);
    const result: LeadScanCommandResult = { reports: [], failures: [] };
    for (const tenantId of tenants) {
      const report = await scanTenant(db, options, tenantId, lock);
      result.reports.push(report);
      if (report.status === 'failed')
        result.failures.push({ tenant_id: tenantId, error: report.stats.error ?? 'failed' });
    }
    return result;
  } finally {
    for (const redis of lockRedis) redis.disconnect();
    await closePostgres(db);
  }
}

async function scanTenant(
  db: Db,
  options: LeadScanCommandOptions,
  tenantId: string,
  lock: LeadScanLock | undefined,
): Promise<LeadScanReport> {
  try {
    return await runLeadScan(db, {
      tenantId,
      window: options.window,
      rules: options.rules,
      dryRun: options.dryRun ?? false,
      force: options.force ?? false,
      ...(lock ? { lock } : {}),
      lockPrefix: options.queuePrefix ?? 'warden',
      trigger: 'cli',
      requestedBy: 'cli',
      ...(options.onProgress
        ? { onProgress: (progress: LeadScanProgress) => options.onProgress!(tenantId, progress) }
        : {}),
    });
  } catch (error) {
    if (error instanceof LeadScanFailedError) return error.report;
    throw new CommandFailedError(`lead scan of ${tenantId} could not start: ${describeError(error)}`);
  }
}

async function connectRedis(url: string, timeoutMs: number): Promise<Redis> {
  // One quick attempt: a CLI should say Redis is away, not retry for a minute.
  const redis = createRedis(url, 'general', {
    maxRetriesPerRequest: 1,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
  });
  try {
    await withTimeout(pingRedis(redis), timeoutMs, 'connecting');
    return redis;
  } catch (error) {
    redis.disconnect();
    throw new CommandFailedError(
      `cannot reach Redis at ${describeUrl(url)} to take the scan lock: ${describeError(error)} (--force scans without the lock)`,
    );
  }
}

/** Reads and validates a rules file; a missing or invalid one is bad input (exit 2), named with its path. */
export async function loadLeadRulesFile(path: string, shownAs = path): Promise<LeadRulesFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new UsageError(
      code === 'ENOENT'
        ? `rules file ${shownAs} does not exist`
        : `cannot read rules file ${shownAs}: ${describeError(error)}`,
    );
  }
  return parsePolicyYaml(text, LeadRulesFileSchema, shownAs);
}

/** The human summary of one scan: window, counts, findings, warnings, dry-run marker, elapsed time. */
export function formatLeadScanReport(report: LeadScanReport, elapsedMs: number): string {
  const lines: string[] = [];
  if (report.status === 'skipped') {
    lines.push(
      `${report.tenant_id} (${report.window_kind}): ${report.stats.error ?? LEAD_SCAN_SKIPPED_MESSAGE}`,
    );
    return lines.join('\n') + '\n';
  }
  const { stats } = report;
  const row = (label: string, value: string | number) => lines.push(`  ${label.padEnd(18)}${value}`);
  lines.push(
    `Lead scan of ${report.tenant_id}, window ${report.window_kind}${report.forced ? ' (forced: no lock)' : ''}`,
  );
  row('window', `${report.window.start} → ${report.window.end}`);
  row('decisions', stats.decisions_scanned);
  row('raw findings', stats.raw_findings);
  row('new findings', stats.new_findings);
  row(
    'duplicates',
    `${stats.duplicate_findings}${stats.reopened_findings || stats.silenced_findings ? ` (${stats.reopened_findings} reopened, ${stats.silenced_findings} silenced)` : ''}`,
  );
  row('tasks created', stats.tasks_created);
  row('tasks skipped', stats.tasks_skipped);
  if (report.findings.length > 0) {
    lines.push('  findings:');
    for (const finding of report.findings) {
      const task = finding.task_created
        ? `→ task ${finding.task_id}`
        : finding.would_create_task
          ? `→ would create ${finding.task_id}`
          : finding.task_id
            ? `(task ${finding.task_id})`
            : '';
      lines.push(
        `    ${finding.outcome.toUpperCase().padEnd(9)} ${finding.severity.padEnd(8)} ${finding.code.padEnd(28)} ${finding.fingerprint}  ${finding.title} ${task}`.trimEnd(),
      );
    }
  }
  for (const warning of stats.warnings) lines.push(`  warning ${warning.code}: ${warning.message}`);
  if (report.status === 'failed') lines.push(`  FAILED: ${stats.error}`);
  if (report.dry_run) lines.push('DRY RUN - no tasks were created');
  lines.push(`Elapsed: ${(elapsedMs / 1000).toFixed(2)} s`);
  return lines.join('\n') + '\n';
}

function displayPath(path: string, cwd: string): string {
  const shown = relative(cwd, path);
  return shown === '' || shown.startsWith('..') || isAbsolute(shown) ? path : shown;
}

export function registerLeadCommand(program: Command, environment: CliEnvironment, io: CliIo): void {
  const lead = program.command('lead').description('mine the audit trail for systemic risk (lead scans)');
  lead
    .command('scan')
    .description(
      'run a lead scan now: six rules over the window, findings deduplicated by fingerprint, one follow-up task per new finding',
    )
    .option('--window <window>', 'how far back: 24h, 7d, or any Nh / Nd from 1h to 90d', '24h')
    .option('--dry-run', 'report what would be created; write no finding, task or audit row')
    .option('--force', 'run even if another scan of the tenant and window holds the lock (and without Redis)')
    .option(
      '--json',
      'print one JSON object: { window_kind, dry_run, tenants: { <tenant id>: report }, failures, findings_count, tasks_created }',
    )
    .option('--config <file>', `rules file (default: LEAD_RULES_FILE or ${DEFAULT_LEAD_RULES_FILE})`)
    .option('--tenant <tenant>', 'only this tenant (default: every tenant with API keys or an audit trail)')
    .addHelpText(
      'after',
      '\nExit codes: 0 done (also when another scan is running and this one was skipped), 1 a scan failed or a\nserver is unreachable, 2 bad input (window, tenant, rules file).\n',
    )
    .action(
      async (flags: {
        window: string;
        dryRun?: boolean;
        force?: boolean;
        json?: boolean;
        config?: string;
        tenant?: string;
      }) => {
        // Input first, so a bad window or rules file is exit 2 whatever state the servers are in.
        const window = parseLeadWindow(flags.window, '--window').kind;
        const tenantId =
          flags.tenant === undefined ? undefined : parseOrThrow(TenantIdSchema, flags.tenant, '--tenant');
        const config = loadConfig(environment);
        const leadEnv = parseOrThrow(leadEnvSchema, environment.env, 'environment');
        const rulesPath = resolve(
          environment.cwd,
          flags.config ?? leadEnv.LEAD_RULES_FILE ?? DEFAULT_LEAD_RULES_FILE,
        );
        const rules = await loadLeadRulesFile(rulesPath, displayPath(rulesPath, environment.cwd));

        const started = performance.now();
        const result = await runLeadScanCommand({
          databaseUrl: config.DATABASE_URL,
          redisUrl: config.REDIS_URL,
          lockUrls: config.REDLOCK_URLS,
          queuePrefix: config.QUEUE_PREFIX,
          window,
          rules,
          ...(tenantId ? { tenantId } : {}),
          dryRun: flags.dryRun ?? false,
          force: flags.force ?? false,
          // Progress goes to stderr, so `--json` output on stdout stays one clean object.
          onProgress: (tenant, progress) => {
            if (progress.phase === 'read' || progress.phase === 'follow_up' || progress.phase === 'evaluate')
              io.err(`[${tenant}/${window}] ${progress.message}\n`);
          },
        });

        if (flags.json) {
          // One object whatever the number of tenants, so a script reads `.tenants["acme"]` or the totals
          // without first asking whether it got an object or an array.
          writeJson(io, {
            window_kind: window,
            dry_run: flags.dryRun ?? false,
            tenants: Object.fromEntries(result.reports.map((report) => [report.tenant_id, report])),
            failures: result.failures,
            findings_count: result.reports.reduce((sum, report) => sum + report.findings_count, 0),
            tasks_created: result.reports.reduce((sum, report) => sum + report.tasks_created, 0),
          });
        } else if (result.reports.length === 0) {
          io.out('no tenants to scan (none has an API key or an audit trail)\n');
        } else {
          for (const report of result.reports) {
            const elapsed =
              Date.parse(report.stats.completed_at ?? report.timestamp) - Date.parse(report.stats.started_at);
            io.out(
              formatLeadScanReport(report, Number.isFinite(elapsed) ? elapsed : performance.now() - started),
            );
          }
          if (result.reports.length > 1)
            io.out(
              `${plural(result.reports.length, 'tenant')} scanned in ${((performance.now() - started) / 1000).toFixed(2)} s\n`,
            );
        }
        if (result.failures.length > 0) {
          throw new CommandFailedError(
            `lead scan failed for ${plural(result.failures.length, 'tenant')}: ${result.failures.map((f) => `${f.tenant_id}: ${f.error}`).join('; ')}`,
          );
        }
      },
    );
}
