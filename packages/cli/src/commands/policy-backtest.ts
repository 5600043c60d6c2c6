/**
 * `warden policy test -f FILE --since 30d [--tenant T] [--json] [--fail-on RULE]...`: replays the event
 * archive of the window through the policy in the file and reports, side by side with what was recorded, the
 * transition matrix, findings gained and lost, and tasks blocked earlier or later. Exit 1 when a `--fail-on`
 * rule is broken, so a policy change can be gated in CI. Progress (events/s, ETA) goes to stderr.
 */
import { countArchivedEvents, replayArchive, type ReplayProgress } from '@warden/db';
import {
  Backtest,
  brokenBacktestRules,
  builtInPolicies,
  parseBacktestFailRule,
  parseLeadWindow,
  parseOrThrow,
  TenantIdSchema,
  type BacktestReport,
  type SupervisorPolicyFile,
} from '@warden/domain';
import type { CliEnvironment } from '../config.js';
import { loadConfig } from '../config.js';
import { CommandFailedError } from '../errors.js';
import { writeJson, type CliIo } from '../output.js';
import { closePostgres, connectPostgres } from '../postgres.js';

export interface BacktestFlags {
  since: string;
  tenant?: string;
  failOn?: string[];
  json?: boolean;
}

export interface BacktestOutcome {
  file: string;
  window: { since: string; tenant: string | null };
  report: BacktestReport;
  broken: Array<{ rule: string; measured: string }>;
  elapsed_ms: number;
  events_per_second: number;
}

const pct = (rate: number) => `${(rate * 100).toFixed(2)}%`;

/** The summary table for a person: the matrix, what changed in findings and tasks, samples, broken rules. */
export function formatBacktest(outcome: BacktestOutcome): string {
  const { report } = outcome;
  const lines = [
    `Backtest of ${outcome.file} over events decided since ${outcome.window.since}${outcome.window.tenant ? ` (tenant ${outcome.window.tenant})` : ''}`,
    `  ${report.events} events of ${report.tasks} tasks replayed in ${(outcome.elapsed_ms / 1000).toFixed(1)} s (${Math.round(outcome.events_per_second)} events/s); ${report.changed} decided differently (${pct(report.events === 0 ? 0 : report.changed / report.events)})`,
    '',
    '  recorded → candidate        events     rate   samples',
  ];
  for (const cell of report.matrix)
    lines.push(
      `  ${`${cell.recorded} → ${cell.candidate}`.padEnd(26)} ${String(cell.count).padStart(7)}  ${pct(cell.rate).padStart(7)}   ${cell.recorded === cell.candidate ? '' : cell.samples.map((s) => `${s.task_id}/${s.event_id}`).join(', ')}`,
    );
  const codes = (title: string, counts: Record<string, number>) => {
    const entries = Object.entries(counts);
    if (entries.length > 0)
      lines.push('', `  ${title}:`, ...entries.map(([code, n]) => `    ${code.padEnd(36)} ${n}`));
  };
  codes('findings gained', report.findings_gained);
  codes('findings lost', report.findings_lost);
  lines.push(
    '',
    `  tasks blocked earlier: ${report.tasks_blocked_earlier_count}${report.tasks_blocked_earlier.length > 0 ? ` (e.g. ${report.tasks_blocked_earlier.map((t) => t.task_id).join(', ')})` : ''}`,
    `  tasks blocked later:   ${report.tasks_blocked_later_count}${report.tasks_blocked_later.length > 0 ? ` (e.g. ${report.tasks_blocked_later.map((t) => t.task_id).join(', ')})` : ''}`,
  );
  if (report.matrix.some((c) => c.recorded !== c.candidate))
    lines.push('  inspect a sample: warden policy … or GET /v1/tasks/<task>/decisions?event_id=<event>');
  for (const broken of outcome.broken) lines.push(`✗ --fail-on ${broken.rule}: measured ${broken.measured}`);
  return lines.join('\n') + '\n';
}

function progressLine(progress: ReplayProgress, total: number): string {
  const eps = progress.elapsedMs > 0 ? (progress.events / progress.elapsedMs) * 1000 : 0;
  const left = eps > 0 ? Math.max(0, (total - progress.events) / eps) : 0;
  const share = total > 0 ? Math.min(1, progress.events / total) : 1;
  const bar = '#'.repeat(Math.round(share * 30)).padEnd(30, '.');
  return `\r[${bar}] ${progress.events}/${total} events  ${Math.round(eps)} events/s  ETA ${Math.ceil(left)} s `;
}

/** Runs a backtest of `policy` (read from `file`) over the archive; prints and throws on broken rules. */
export async function runPolicyBacktest(
  file: string,
  policy: SupervisorPolicyFile,
  flags: BacktestFlags,
  environment: CliEnvironment,
  io: CliIo,
): Promise<void> {
  // Input first: a bad window, tenant or rule is exit 2 before any connection.
  const window = parseLeadWindow(flags.since, '--since');
  const tenantId =
    flags.tenant === undefined ? undefined : parseOrThrow(TenantIdSchema, flags.tenant, '--tenant');
  const rules = (flags.failOn ?? []).map((rule) => parseBacktestFailRule(rule));
  const config = loadConfig(environment);
  const db = await connectPostgres(config.DATABASE_URL);
  try {
    const since = new Date(Date.now() - window.ms);
    const archiveWindow = { since, ...(tenantId ? { tenantId } : {}) };
    const total = await countArchivedEvents(db, archiveWindow);
    const backtest = new Backtest(policy, builtInPolicies());
    const progress = await replayArchive(db, archiveWindow, backtest, {
      onProgress: (p) => io.err(progressLine(p, total)),
    });
    if (progress.events >= 10_000) io.err(progressLine(progress, total) + '\n');
    const report = backtest.report();
    const outcome: BacktestOutcome = {
      file,
      window: { since: since.toISOString(), tenant: tenantId ?? null },
      report,
      broken: brokenBacktestRules(report, rules),
      elapsed_ms: Math.round(progress.elapsedMs),
      events_per_second: progress.elapsedMs > 0 ? (progress.events / progress.elapsedMs) * 1000 : 0,
    };
    if (flags.json) writeJson(io, outcome);
    else io.out(formatBacktest(outcome));
    if (outcome.broken.length > 0)
      throw new CommandFailedError(
        `${outcome.broken.length} --fail-on rule(s) broken: ${outcome.broken.map((b) => b.rule).join(', ')}`,
      );
  } finally {
    await closePostgres(db);
  }
}
