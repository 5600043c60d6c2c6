import {
  evaluateLeadRules,
  LEAD_SCAN_SKIPPED_MESSAGE,
  leadFollowUpTaskId,
  leadScanWindow,
  parseLeadWindow,
  planLeadFindingUpsert,
  severityAtLeast,
  type LeadFindingDraft,
  type LeadRulesFile,
  type LeadScanFindingResult,
  type LeadScanProgress,
  type LeadScanReport,
  type LeadScanStats,
  type LeadScanTrigger,
  type LeadScanWarning,
  type LeadScanWindow,
} from '@warden/domain';
import type { Db } from '../core/connection.js';
import type { QueryExecutor } from '../database.js';
import {
  claimLeadScan,
  createLeadFollowUp,
  failAbandonedLeadScans,
  finishLeadScan,
  insertLeadScan,
  lockLeadTenant,
  readLeadFindingStates,
  storeLeadFindings,
  touchLeadScan,
  type PlannedLeadFinding,
} from './findings.js';
import { readLeadScanInputs } from './scan-inputs.js';
import { leadScanLockKey, type LeadScanLease, type LeadScanLock } from './scan-lock.js';

export interface RunLeadScanOptions {
  tenantId: string;
  /** `24h`, `7d`, any `Nh`/`Nd` from 1h to 90d; anything else throws a ValidationError before anything runs. */
  window: string;
  /** The validated rules file. */
  rules: LeadRulesFile;
  /** Write nothing but the scan's own record; report what would be created. @defaultValue `false` */
  dryRun?: boolean;
  /** Run without the single-flight lock. @defaultValue `false` */
  force?: boolean;
  /** The lock; required unless `force`. */
  lock?: LeadScanLock;
  /** Namespace of the lock key (the installation's queue prefix), so installs sharing a Redis do not collide. @defaultValue `warden` */
  lockPrefix?: string;
  /** @defaultValue `cli` */
  trigger?: LeadScanTrigger;
  /** A `queued` lead_scans row to run (API requests); a new row is recorded otherwise. */
  scanId?: string;
  /** Who asked (an API key, `cli`, `schedule`). */
  requestedBy?: string;
  /** The clock: the window ends at `now()`. @defaultValue the system clock */
  now?: () => Date;
  /** Progress, for a CLI line or a job's progress. Never awaited for long: keep it cheap. */
  onProgress?: (progress: LeadScanProgress) => void;
  /** Slice length of the read, for progress. @defaultValue one day */
  sliceMs?: number;
  /** A running scan whose heartbeat is older than this is considered dead. @defaultValue `600000` */
  staleAfterMs?: number;
  /** Test hook: runs inside each create-and-link transaction before it commits (failure injection). */
  beforeFollowUpCommit?: (trx: QueryExecutor, fingerprint: string) => Promise<void>;
}

/** A scan that failed after it started; `report` says how far it got (and is what `--json` prints). */
export class LeadScanFailedError extends Error {
  constructor(
    message: string,
    readonly report: LeadScanReport,
  ) {
    super(message);
    this.name = 'LeadScanFailedError';
  }
}

/** The queued scan was already run (a redelivered job) or is running elsewhere: nothing to do. */
export class LeadScanAlreadyHandledError extends Error {
  constructor(readonly scanId: string) {
    super(`lead scan ${scanId} was already run or is running elsewhere`);
    this.name = 'LeadScanAlreadyHandledError';
  }
}

const STORE_BATCH = 100;
const QUEUED_TOO_LONG_MS = 24 * 3_600_000;

/**
 * One lead scan of one tenant's window (SPEC §4): take the single-flight lock, record the scan, read the
 * window (aggregated in SQL), run the six rules, upsert the findings by fingerprint, then create and link a
 * follow-up task for every open finding without one — each task in one transaction with its link and audit.
 *
 * Resolves with the report when the scan completed or was skipped (another scan holds the lock); throws a
 * {@link LeadScanFailedError} when it failed after being recorded (the failure is recorded too), and the
 * plain error when it could not start (bad window, database or Redis unreachable).
 *
 * @example
 * const report = await runLeadScan(db, { tenantId: 'acme', window: '24h', rules, lock: redlockLeadScanLock(redlock) });
 * if (report.status === 'skipped') console.log(report.stats.error); // "another lead scan is running; skipped"
 */
export async function runLeadScan(db: Db, options: RunLeadScanOptions): Promise<LeadScanReport> {
  const kind = parseLeadWindow(options.window);
  const clock = options.now ?? (() => new Date());
  const started = clock();
  const window = leadScanWindow(kind, started);
  const forced = options.force ?? false;
  const dryRun = options.dryRun ?? false;
  const trigger = options.trigger ?? 'cli';
  const progress = options.onProgress ?? (() => {});
  if (!forced && !options.lock) throw new Error('runLeadScan: a lock is required unless force is set');

  let lease: LeadScanLease | undefined;
  if (!forced) {
    progress({
      phase: 'lock',
      done: 0,
      total: 1,
      message: `taking the scan lock of ${options.tenantId}/${kind.kind}`,
    });
    lease = await options.lock!.tryAcquire(
      leadScanLockKey(options.lockPrefix ?? 'warden', options.tenantId, kind.kind),
    );
    if (!lease) return recordSkipped(db, options, window, { dryRun, trigger, started, clock });
  }

  const report = emptyReport(options, window, { dryRun, forced, started, status: 'completed' });
  let scanId: string | undefined;
  let results: FindingResult[] = [];
  const settle = () => {
    report.stats.tasks_skipped = Math.max(
      0,
      results.filter((r) => r.needsFollowUp).length - report.stats.tasks_created,
    );
    report.tasks_created = report.stats.tasks_created;
    report.findings_count = report.stats.new_findings;
    report.stats.completed_at = clock().toISOString();
  };
  try {
    scanId = await recordStart(db, options, window, { dryRun, forced, trigger });
    report.scan_id = scanId;
    const activeScan = scanId;
    const signal = lease?.signal;
    const staleAfterMs = options.staleAfterMs ?? 600_000;
    await failAbandonedLeadScans(db, options.tenantId, kind.kind, staleAfterMs, QUEUED_TOO_LONG_MS);

    const inputs = await readLeadScanInputs(db, {
      tenantId: options.tenantId,
      window,
      rules: options.rules,
      ...(options.sliceMs ? { sliceMs: options.sliceMs } : {}),
      ...(signal ? { signal } : {}),
      onSlice: async (done, total, decisions) => {
        progress({
          phase: 'read',
          done,
          total,
          message: `read ${done}/${total} slices of the window (${decisions} decisions so far)`,
        });
        await touchLeadScan(db, activeScan);
      },
    });
    report.stats.decisions_scanned = inputs.decisions.total;

    const evaluation = evaluateLeadRules(inputs, options.rules);
    report.stats.raw_findings = evaluation.findings.length;
    report.stats.warnings = evaluation.warnings;
    progress({
      phase: 'evaluate',
      done: 1,
      total: 1,
      message: `${evaluation.findings.length} raw findings over ${inputs.decisions.total} decisions`,
    });
    checkLease(signal);

    results = dryRun
      ? await planDryRun(db, options.tenantId, evaluation.findings, started)
      : await storeFindings(db, options, evaluation.findings, {
          now: started,
          scanId: activeScan,
          signal,
          progress,
        });
    report.findings = results.map((r) => r.result);
    tally(report.stats, results);

    if (!dryRun) {
      await createFollowUps(db, options, results, {
        now: started,
        scanId: activeScan,
        signal,
        progress,
        report,
      });
    }
    settle();
    await finishLeadScan(db, activeScan, {
      status: 'completed',
      stats: { ...report.stats },
      warnings: report.stats.warnings,
      error: null,
    });
    return report;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    report.status = 'failed';
    report.stats.error = message;
    settle();
    if (scanId === undefined) throw error;
    await finishLeadScan(db, scanId, {
      status: 'failed',
      stats: { ...report.stats },
      warnings: report.stats.warnings,
      error: message,
    }).catch(() => {});
    throw new LeadScanFailedError(`lead scan of ${options.tenantId}/${kind.kind} failed: ${message}`, report);
  } finally {
    await lease?.release();
  }
}

function emptyReport(
  options: RunLeadScanOptions,
  window: LeadScanWindow,
  context: { dryRun: boolean; forced: boolean; started: Date; status: LeadScanReport['status'] },
): LeadScanReport {
  const stats: LeadScanStats = {
    started_at: context.started.toISOString(),
    completed_at: null,
    raw_findings: 0,
    new_findings: 0,
    duplicate_findings: 0,
    tasks_created: 0,
    tasks_skipped: 0,
    error: null,
    reopened_findings: 0,
    silenced_findings: 0,
    decisions_scanned: 0,
    warnings: [],
  };
  return {
    timestamp: context.started.toISOString(),
    window_kind: window.kind,
    window: { start: window.start.toISOString(), end: window.end.toISOString() },
    findings_count: 0,
    tasks_created: 0,
    dry_run: context.dryRun,
    stats,
    scan_id: options.scanId ?? null,
    tenant_id: options.tenantId,
    status: context.status,
    forced: context.forced,
    rules_version: options.rules.version,
    findings: [],
  };
}

async function recordSkipped(
  db: Db,
  options: RunLeadScanOptions,
  window: LeadScanWindow,
  context: { dryRun: boolean; trigger: LeadScanTrigger; started: Date; clock: () => Date },
): Promise<LeadScanReport> {
  const report = emptyReport(options, window, {
    dryRun: context.dryRun,
    forced: false,
    started: context.started,
    status: 'skipped',
  });
  report.stats.error = LEAD_SCAN_SKIPPED_MESSAGE;
  report.stats.completed_at = context.clock().toISOString();
  if (options.scanId) {
    // Only a scan still waiting: a redelivered job of a finished scan leaves its record alone.
    const recorded = await finishLeadScan(
      db,
      options.scanId,
      { status: 'skipped', stats: { ...report.stats }, warnings: [], error: LEAD_SCAN_SKIPPED_MESSAGE },
      ['queued'],
    );
    if (!recorded) throw new LeadScanAlreadyHandledError(options.scanId);
  } else {
    report.scan_id = await insertLeadScan(db, {
      tenantId: options.tenantId,
      windowKind: window.kind,
      status: 'skipped',
      trigger: context.trigger,
      dryRun: context.dryRun,
      forced: false,
      requestedBy: options.requestedBy ?? null,
      window,
      rulesVersion: options.rules.version,
      error: LEAD_SCAN_SKIPPED_MESSAGE,
    });
  }
  return report;
}

async function recordStart(
  db: Db,
  options: RunLeadScanOptions,
  window: LeadScanWindow,
  context: { dryRun: boolean; forced: boolean; trigger: LeadScanTrigger },
): Promise<string> {
  if (options.scanId) {
    const claimed = await claimLeadScan(db, {
      tenantId: options.tenantId,
      scanId: options.scanId,
      window,
      rulesVersion: options.rules.version,
      staleAfterMs: options.staleAfterMs ?? 600_000,
    });
    if (!claimed) throw new LeadScanAlreadyHandledError(options.scanId);
    return options.scanId;
  }
  return insertLeadScan(db, {
    tenantId: options.tenantId,
    windowKind: window.kind,
    status: 'running',
    trigger: context.trigger,
    dryRun: context.dryRun,
    forced: context.forced,
    requestedBy: options.requestedBy ?? null,
    window,
    rulesVersion: options.rules.version,
  });
}

function checkLease(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('lost the scan lock');
}

interface FindingResult {
  fingerprint: string;
  outcome: LeadScanFindingResult['outcome'];
  needsFollowUp: boolean;
  result: LeadScanFindingResult;
}

function tally(stats: LeadScanStats, results: readonly FindingResult[]): void {
  stats.new_findings = results.filter((r) => r.outcome === 'new').length;
  stats.duplicate_findings = results.length - stats.new_findings;
  stats.reopened_findings = results.filter((r) => r.outcome === 'reopened').length;
  stats.silenced_findings = results.filter((r) => r.outcome === 'silenced').length;
}

function findingResult(draft: LeadFindingDraft, planned: PlannedLeadFinding, dryRun: boolean): FindingResult {
  const { plan } = planned;
  return {
    fingerprint: draft.fingerprint,
    outcome: plan.outcome,
    needsFollowUp: plan.needs_follow_up,
    result: {
      fingerprint: draft.fingerprint,
      code: draft.rule_code,
      severity: draft.severity,
      title: draft.title,
      outcome: plan.outcome,
      task_id:
        planned.linked_task_id ??
        (dryRun && plan.needs_follow_up ? leadFollowUpTaskId(draft.fingerprint) : null),
      task_created: false,
      would_create_task: dryRun && plan.needs_follow_up,
    },
  };
}

/** Dry run: classify against what is stored, write nothing. */
async function planDryRun(
  db: Db,
  tenantId: string,
  drafts: readonly LeadFindingDraft[],
  now: Date,
): Promise<FindingResult[]> {
  const results: FindingResult[] = [];
  for (let offset = 0; offset < drafts.length; offset += STORE_BATCH) {
    const batch = drafts.slice(offset, offset + STORE_BATCH);
    const states = await readLeadFindingStates(
      db,
      tenantId,
      batch.map((d) => d.fingerprint),
    );
    for (const draft of batch) {
      const existing = states.get(draft.fingerprint);
      results.push(
        findingResult(
          draft,
          {
            draft,
            plan: planLeadFindingUpsert(existing, now),
            linked_task_id: existing?.linked_task_id ?? null,
          },
          true,
        ),
      );
    }
  }
  return results;
}

async function storeFindings(
  db: Db,
  options: RunLeadScanOptions,
  drafts: readonly LeadFindingDraft[],
  context: {
    now: Date;
    scanId: string;
    signal: AbortSignal | undefined;
    progress: (p: LeadScanProgress) => void;
  },
): Promise<FindingResult[]> {
  const results: FindingResult[] = [];
  for (let offset = 0; offset < drafts.length; offset += STORE_BATCH) {
    checkLease(context.signal);
    const batch = drafts.slice(offset, offset + STORE_BATCH);
    const planned = await db.transaction().execute(async (trx) => {
      await lockLeadTenant(trx, options.tenantId);
      const states = await readLeadFindingStates(
        trx,
        options.tenantId,
        batch.map((d) => d.fingerprint),
        { forUpdate: true },
      );
      const plans: PlannedLeadFinding[] = batch.map((draft) => {
        const existing = states.get(draft.fingerprint);
        return {
          draft,
          plan: planLeadFindingUpsert(existing, context.now),
          linked_task_id: existing?.linked_task_id ?? null,
        };
      });
      await storeLeadFindings(trx, options.tenantId, plans, { now: context.now, scanId: context.scanId });
      return plans;
    });
    for (const plan of planned) results.push(findingResult(plan.draft, plan, false));
    context.progress({
      phase: 'store',
      done: results.length,
      total: drafts.length,
      message: `stored ${results.length}/${drafts.length} findings`,
    });
  }
  return results;
}

/** Most urgent first, so a scan that stops half-way has opened the tasks that matter most. */
function byUrgency(a: FindingResult, b: FindingResult): number {
  const rank = (r: FindingResult) =>
    severityAtLeast(r.result.severity, 'CRITICAL')
      ? 0
      : severityAtLeast(r.result.severity, 'HIGH')
        ? 1
        : severityAtLeast(r.result.severity, 'MEDIUM')
          ? 2
          : 3;
  return rank(a) - rank(b);
}

async function createFollowUps(
  db: Db,
  options: RunLeadScanOptions,
  results: readonly FindingResult[],
  context: {
    now: Date;
    scanId: string;
    signal: AbortSignal | undefined;
    progress: (p: LeadScanProgress) => void;
    report: LeadScanReport;
  },
): Promise<void> {
  const needing = results.filter((r) => r.needsFollowUp).sort(byUrgency);
  const failures: string[] = [];
  let done = 0;
  for (const finding of needing) {
    checkLease(context.signal);
    let outcome: Awaited<ReturnType<typeof createLeadFollowUp>>;
    try {
      outcome = await db.transaction().execute(async (trx) => {
        await lockLeadTenant(trx, options.tenantId);
        const linked = await createLeadFollowUp(trx, options.tenantId, finding.fingerprint, {
          now: context.now,
          scanId: context.scanId,
        });
        if (linked.status === 'created') await options.beforeFollowUpCommit?.(trx, finding.fingerprint);
        return linked;
      });
    } catch (error) {
      // Rolled back: neither task nor link. The others still get theirs; the next scan retries this one.
      failures.push(`${finding.fingerprint}: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    } finally {
      done += 1;
    }
    if (outcome.status === 'created') {
      context.report.stats.tasks_created += 1;
      finding.result.task_id = outcome.task_id;
      finding.result.task_created = true;
    } else if (outcome.status === 'not_needed') {
      finding.result.task_id = outcome.task_id;
    } else {
      context.report.stats.warnings.push(conflictWarning(finding.fingerprint, outcome.task_id));
    }
    context.progress({
      phase: 'follow_up',
      done,
      total: needing.length,
      message: `follow-up tasks: ${context.report.stats.tasks_created} created (${done}/${needing.length})`,
    });
  }
  if (failures.length > 0) {
    throw new Error(
      `${failures.length} of ${needing.length} follow-up tasks could not be created (the next scan retries them): ${failures.slice(0, 3).join('; ')}`,
    );
  }
}

function conflictWarning(fingerprint: string, taskId: string): LeadScanWarning {
  return {
    code: 'LEAD_FOLLOW_UP_CONFLICT',
    message: `finding ${fingerprint} got no follow-up: a task ${taskId} exists that is not its follow-up; rename or remove it`,
    details: { fingerprint, task_id: taskId },
  };
}
