/**
 * The lead scan use case: one scan of one tenant's window, run the same way by the lead-miner (queued and
 * scheduled scans) and by `warden lead scan` (in the CLI's own process). docs/lead-miner.md walks through it.
 */
import {
  evaluateLeadRules,
  LEAD_SCAN_SKIPPED_MESSAGE,
  leadScanWindow,
  parseLeadWindow,
  type LeadRulesFile,
  type LeadScanProgress,
  type LeadScanReport,
  type LeadScanTrigger,
  type LeadScanWindow,
} from '@warden/domain';
import {
  claimLeadScan,
  failAbandonedLeadScans,
  finishLeadScan,
  insertLeadScan,
  readLeadScanInputs,
  touchLeadScan,
  type Db,
  type QueryExecutor,
} from '@warden/db';
import { LeadScanAlreadyHandledError, LeadScanFailedError } from './errors.js';
import { createFollowUps } from './follow-ups.js';
import { leadScanLockKey, type LeadScanLease, type LeadScanLock } from './scan-lock.js';
import {
  emptyLeadScanReport,
  settleLeadScanReport,
  tallyFindings,
  type FindingResult,
} from './scan-report.js';
import { planDryRun, storeFindings, type ScanWriteContext } from './store-findings.js';

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
  /** Who asked (an API key, `cli`, `schedule`). @defaultValue `null` (not recorded) */
  requestedBy?: string;
  /** The clock: the window ends at `now()`. @defaultValue the system clock */
  now?: () => Date;
  /** Progress, for a CLI line or a job's progress. Never awaited for long: keep it cheap. @defaultValue none */
  onProgress?: (progress: LeadScanProgress) => void;
  /** Slice length of the read, for progress. @defaultValue one day */
  sliceMs?: number;
  /** A running scan whose heartbeat is older than this is considered dead. @defaultValue `600000` */
  staleAfterMs?: number;
  /** Test hook: runs inside each create-and-link transaction before it commits (failure injection). @defaultValue none */
  beforeFollowUpCommit?: (trx: QueryExecutor, fingerprint: string) => Promise<void>;
}

/** A queued scan whose job never came is failed once it waited this long. */
const QUEUED_TOO_LONG_MS = 24 * 3_600_000;
const DEFAULT_STALE_AFTER_MS = 600_000;

/** What the steps of one scan share. */
interface ScanContext {
  options: RunLeadScanOptions;
  window: LeadScanWindow;
  dryRun: boolean;
  forced: boolean;
  trigger: LeadScanTrigger;
  started: Date;
  clock: () => Date;
  progress: (progress: LeadScanProgress) => void;
}

/**
 * One lead scan of one tenant's window: take the single-flight lock, record the scan, read the window
 * (aggregated in SQL), run the six rules, upsert the findings by fingerprint, then create and link a
 * follow-up task for every open finding without one — each task in one transaction with its link and audit.
 *
 * Resolves with the report when the scan completed or was skipped (another scan holds the lock); throws a
 * {@link LeadScanFailedError} when it failed after being recorded (the failure is recorded too), a
 * {@link LeadScanAlreadyHandledError} when the queued scan `scanId` was run already, and the plain error when
 * it could not start (bad window, database unreachable, a LeadScanLockUnavailableError from the lock).
 *
 * @example
 * const report = await runLeadScan(db, { tenantId: 'acme', window: '24h', rules, lock: redlockLeadScanLock(redlock) });
 * if (report.status === 'skipped') console.log(report.stats.error); // "another lead scan is running; skipped"
 */
export async function runLeadScan(db: Db, options: RunLeadScanOptions): Promise<LeadScanReport> {
  const kind = parseLeadWindow(options.window);
  const clock = options.now ?? (() => new Date());
  const started = clock();
  const context: ScanContext = {
    options,
    window: leadScanWindow(kind, started),
    dryRun: options.dryRun ?? false,
    forced: options.force ?? false,
    trigger: options.trigger ?? 'cli',
    started,
    clock,
    progress: options.onProgress ?? (() => {}),
  };
  if (!context.forced && !options.lock)
    throw new Error('runLeadScan: a lock is required unless force is set');

  let lease: LeadScanLease | undefined;
  if (!context.forced) {
    context.progress({
      phase: 'lock',
      done: 0,
      total: 1,
      message: `taking the scan lock of ${options.tenantId}/${kind.kind}`,
    });
    lease = await options.lock!.tryAcquire(
      leadScanLockKey(options.lockPrefix ?? 'warden', options.tenantId, kind.kind),
    );
    if (!lease) return recordSkipped(db, context);
  }
  try {
    return await runLocked(db, context, lease?.signal);
  } finally {
    await lease?.release();
  }
}

function reportOf(context: ScanContext, status: LeadScanReport['status']): LeadScanReport {
  return emptyLeadScanReport({
    tenantId: context.options.tenantId,
    scanId: context.options.scanId ?? null,
    window: context.window,
    rulesVersion: context.options.rules.version,
    dryRun: context.dryRun,
    forced: context.forced,
    started: context.started,
    status,
  });
}

/** Steps 2 to 7, with the lock held (or forced): record, read, evaluate, store, follow up, record the end. */
async function runLocked(
  db: Db,
  context: ScanContext,
  signal: AbortSignal | undefined,
): Promise<LeadScanReport> {
  const { options, window, progress } = context;
  const report = reportOf(context, 'completed');
  const checkLease = () => {
    if (signal?.aborted)
      throw signal.reason instanceof Error ? signal.reason : new Error('lost the scan lock');
  };
  let scanId: string | undefined;
  let results: FindingResult[] = [];
  try {
    scanId = await recordStart(db, context);
    report.scan_id = scanId;
    const activeScan = scanId;
    await failAbandonedLeadScans(
      db,
      options.tenantId,
      window.kind,
      options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS,
      QUEUED_TOO_LONG_MS,
    );

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
    checkLease();

    const steps: ScanWriteContext = { now: context.started, scanId: activeScan, checkLease, progress };
    results = context.dryRun
      ? await planDryRun(db, options.tenantId, evaluation.findings, context.started)
      : await storeFindings(db, options.tenantId, evaluation.findings, steps);
    tallyFindings(report, results);

    if (!context.dryRun) {
      await createFollowUps(db, options.tenantId, results, {
        ...steps,
        report,
        ...(options.beforeFollowUpCommit ? { beforeCommit: options.beforeFollowUpCommit } : {}),
      });
    }
    settleLeadScanReport(report, results, context.clock());
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
    settleLeadScanReport(report, results, context.clock());
    if (scanId === undefined) throw error;
    await finishLeadScan(db, scanId, {
      status: 'failed',
      stats: { ...report.stats },
      warnings: report.stats.warnings,
      error: message,
    }).catch(() => {});
    throw new LeadScanFailedError(
      `lead scan of ${options.tenantId}/${window.kind} failed: ${message}`,
      report,
    );
  }
}

/** Another scan holds the lock: record this one as skipped (or leave a finished queued scan alone). */
async function recordSkipped(db: Db, context: ScanContext): Promise<LeadScanReport> {
  const { options, window } = context;
  const report = reportOf(context, 'skipped');
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

/** Claims the queued scan `scanId` (an API request), or records a new running one. Returns its id. */
async function recordStart(db: Db, context: ScanContext): Promise<string> {
  const { options, window } = context;
  if (options.scanId) {
    const claimed = await claimLeadScan(db, {
      tenantId: options.tenantId,
      scanId: options.scanId,
      window,
      rulesVersion: options.rules.version,
      staleAfterMs: options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS,
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
