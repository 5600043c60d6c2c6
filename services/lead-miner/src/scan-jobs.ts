import type { Job } from 'bullmq';
import type { Db } from '@warden/db';
import type {
  HandlerReport,
  HandlerResult,
  LeadRulesFile,
  LeadScanProgress,
  LeadScanReport,
} from '@warden/domain';
import {
  LeadScanAlreadyHandledError,
  LeadScanFailedError,
  runLeadScan,
  type LeadScanLock,
} from '@warden/lead-engine';
import type { Logger } from '@warden/observability';
import { QUEUE_NAMES, type JobName, type JobPayload, type WardenQueues } from '@warden/queue';
import type { TenantPolicySource } from '@warden/runtime';
import type { LeadMetrics } from './metrics.js';

export interface ScanJobDependencies {
  db: Db;
  /** A tenant's lead rules: its active stored `lead-rules` version, else the rules file. */
  rules: TenantPolicySource<LeadRulesFile>;
  lock: LeadScanLock;
  /** To report the outcome of a scan a trigger asked for on `cron-results`. */
  queues: WardenQueues;
  /** The installation's queue prefix, also the namespace of the lock keys. */
  prefix: string;
  logger: Logger;
  metrics: LeadMetrics;
}

type LeadJobName = JobName<typeof QUEUE_NAMES.leadScans>;
type ScanPayload = JobPayload<typeof QUEUE_NAMES.leadScans, 'scan'>;

/** What a `lead-scans` job returns (shown in Bull Board). */
export type ScanJobResult =
  | { status: LeadScanReport['status']; scan_id: string | null; new_findings: number; tasks_created: number }
  | { status: 'already_handled'; scan_id: string };

/**
 * The handler of the `lead-scans` queue: `scan` runs one tenant's scan (Redlock single flight inside
 * runLeadScan). A scan a trigger asked for (`trigger_call`: the built-in 24h and 7d scans are the scheduler's
 * triggers) reports its outcome on `cron-results`, as an SDK trigger worker does, so the trigger's run ends
 * with it and its breaker counts failed scans.
 */
export function createScanJobHandler(
  deps: ScanJobDependencies,
): (payload: ScanPayload, job: Job, name: LeadJobName) => Promise<ScanJobResult> {
  return async (payload, job) => {
    if (!payload.trigger_call) return runScan(deps, payload, job);
    let result: ScanJobResult;
    try {
      result = await runScan(deps, payload, job);
    } catch (error) {
      await reportToTrigger(deps, payload, job, failedCall(error));
      throw error;
    }
    await reportToTrigger(deps, payload, job, { ok: true, result: callResult(payload, result) });
    return result;
  };
}

async function runScan(deps: ScanJobDependencies, payload: ScanPayload, job: Job): Promise<ScanJobResult> {
  const log = deps.logger.child({
    module: 'lead',
    action: 'scan',
    tenant_id: payload.tenant_id,
    window: payload.window,
    job_id: job.id,
  });
  let lastProgress = 0;
  const onProgress = (progress: LeadScanProgress) => {
    // Progress is a Redis write: at most one a second, plus each phase's last step.
    const now = Date.now();
    if (now - lastProgress < 1000 && progress.done < progress.total) return;
    lastProgress = now;
    job.updateProgress({ ...progress }).catch(() => {});
  };
  try {
    const report = await runLeadScan(deps.db, {
      tenantId: payload.tenant_id,
      window: payload.window,
      // Taken when the scan starts: a version activated meanwhile applies from the next scan. The scan records
      // its `version` as rules_version (`1@v3` for a stored version).
      rules: deps.rules.policyFor(payload.tenant_id),
      dryRun: payload.dry_run,
      force: payload.force,
      lock: deps.lock,
      lockPrefix: deps.prefix,
      trigger: payload.trigger,
      ...(payload.scan_id ? { scanId: payload.scan_id } : {}),
      requestedBy: payload.requested_by ?? `job:${job.id}`,
      onProgress,
    });
    deps.metrics.record(report);
    const summary = {
      scan_id: report.scan_id,
      scan_status: report.status,
      raw_findings: report.stats.raw_findings,
      new_findings: report.stats.new_findings,
      tasks_created: report.tasks_created,
      dry_run: report.dry_run,
    };
    if (report.status === 'skipped')
      log.info({ status: 'skipped', ...summary }, report.stats.error ?? 'skipped');
    else
      log.info(
        {
          status: 'ok',
          ...summary,
          latency_ms: Date.parse(report.stats.completed_at!) - Date.parse(report.stats.started_at),
        },
        'lead scan completed',
      );
    for (const warning of report.stats.warnings)
      log.warn(
        { status: 'warning', error_code: warning.code, scan_id: report.scan_id, details: warning.details },
        warning.message,
      );
    return {
      status: report.status,
      scan_id: report.scan_id,
      new_findings: report.stats.new_findings,
      tasks_created: report.tasks_created,
    };
  } catch (error) {
    if (error instanceof LeadScanAlreadyHandledError) {
      log.info({ status: 'skipped', scan_id: error.scanId }, error.message);
      return { status: 'already_handled', scan_id: error.scanId };
    }
    if (error instanceof LeadScanFailedError) {
      deps.metrics.record(error.report);
      for (const warning of error.report.stats.warnings)
        log.warn({ status: 'warning', error_code: warning.code, details: warning.details }, warning.message);
    }
    log.error(
      { status: 'error', error_code: 'lead_scan_failed', err: error },
      error instanceof Error ? error.message : String(error),
    );
    throw error;
  }
}

/**
 * What a trigger's run records as its output: the scan's status, id (`GET /v1/lead/scans/:id` has the rest)
 * and counts. A scan skipped because another scan of the tenant and window held the lock is a successful
 * call: that other scan is doing the work.
 */
function callResult(payload: ScanPayload, result: ScanJobResult): HandlerResult {
  return { output: { ...result, window: payload.window } };
}

/** A scan that threw: a `handler` failure carrying the scan's error (a failed scan's row says the same). */
function failedCall(error: unknown): Pick<HandlerReport, 'ok' | 'error'> {
  const message = error instanceof Error ? error.message : String(error);
  return { ok: false, error: { kind: 'handler', message: message.slice(0, 4000) } };
}

/**
 * Puts the call's outcome on `cron-results`, with a job id per call so a repeated report is one job (and the
 * scheduler records a call once anyway). A report that cannot be sent is logged: the call's deadline ends the
 * run instead, as for a trigger worker that died.
 */
async function reportToTrigger(
  deps: ScanJobDependencies,
  payload: ScanPayload,
  job: Job,
  outcome: Pick<HandlerReport, 'ok' | 'result' | 'error'>,
): Promise<void> {
  const call = payload.trigger_call!;
  try {
    await deps.queues.enqueue(
      QUEUE_NAMES.cronResults,
      'result',
      {
        tenant_id: payload.tenant_id,
        execution_id: call.execution_id,
        attempt_id: call.attempt_id,
        ...outcome,
      },
      { jobId: `lead-scan-result-${call.attempt_id}` },
    );
  } catch (error) {
    deps.logger.warn(
      {
        module: 'lead',
        action: 'report',
        status: 'error',
        tenant_id: payload.tenant_id,
        execution_id: call.execution_id,
        job_id: job.id,
        err: error,
      },
      "could not report the scan to its trigger; the call's deadline will end the run",
    );
  }
}
