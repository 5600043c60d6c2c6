import type { Job } from 'bullmq';
import { listLeadScanTenants, type Db } from '@warden/db';
import type { LeadRulesFile, LeadScanProgress, LeadScanReport } from '@warden/domain';
import {
  LeadScanAlreadyHandledError,
  LeadScanFailedError,
  runLeadScan,
  type LeadScanLock,
} from '@warden/lead-engine';
import type { Logger } from '@warden/observability';
import { QUEUE_NAMES, type JobName, type JobPayload, type WardenQueues } from '@warden/queue';
import type { LeadMetrics } from './metrics.js';

export interface ScanJobDependencies {
  db: Db;
  rules: LeadRulesFile;
  lock: LeadScanLock;
  /** To fan a `scan-all` out into one `scan` per tenant. */
  queues: WardenQueues;
  /** The installation's queue prefix, also the namespace of the lock keys. */
  prefix: string;
  logger: Logger;
  metrics: LeadMetrics;
}

type LeadJobName = JobName<typeof QUEUE_NAMES.leadScans>;
type LeadJobPayload = JobPayload<typeof QUEUE_NAMES.leadScans, LeadJobName>;
type ScanPayload = JobPayload<typeof QUEUE_NAMES.leadScans, 'scan'>;
type ScanAllPayload = JobPayload<typeof QUEUE_NAMES.leadScans, 'scan-all'>;

/** What a `lead-scans` job returns (shown in Bull Board). */
export type ScanJobResult =
  | { status: LeadScanReport['status']; scan_id: string | null; new_findings: number; tasks_created: number }
  | { status: 'already_handled'; scan_id: string }
  | { status: 'fanned_out'; tenants: number };

/**
 * The handler of the `lead-scans` queue: `scan` runs one tenant's scan (Redlock single flight inside
 * runLeadScan); `scan-all` — what the job schedulers add — enqueues a `scan` per tenant, with job ids derived
 * from the fire time so a redelivered fan-out adds nothing twice.
 */
export function createScanJobHandler(
  deps: ScanJobDependencies,
): (payload: LeadJobPayload, job: Job, name: LeadJobName) => Promise<ScanJobResult> {
  return async (payload, job, name) => {
    if (name === 'scan-all') return fanOut(deps, payload as ScanAllPayload, job);
    return runScan(deps, payload as ScanPayload, job);
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
      rules: deps.rules,
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

async function fanOut(deps: ScanJobDependencies, payload: ScanAllPayload, job: Job): Promise<ScanJobResult> {
  const tenants = await listLeadScanTenants(deps.db);
  // A scheduler's job id is `repeat:<scheduler id>:<fire millis>`; each fire gets its own scan jobs.
  const fire = /:(\d+)$/.exec(job.id ?? '')?.[1] ?? String(job.timestamp);
  await deps.queues.enqueueBulk(
    QUEUE_NAMES.leadScans,
    'scan',
    tenants.map((tenant) => ({
      payload: {
        tenant_id: tenant,
        window: payload.window,
        dry_run: payload.dry_run,
        trigger: 'schedule' as const,
        requested_by: `schedule:${job.repeatJobKey ?? job.name}`,
      },
      options: { jobId: `sched-${payload.window}-${tenant}-${fire}` },
    })),
  );
  deps.logger.info(
    {
      module: 'lead',
      action: 'fan_out',
      status: 'ok',
      window: payload.window,
      tenants: tenants.length,
      job_id: job.id,
    },
    `scheduled ${payload.window} scan of ${tenants.length} tenants`,
  );
  return { status: 'fanned_out', tenants: tenants.length };
}
