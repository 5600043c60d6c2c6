import { Counter, Gauge, Histogram, type Registry } from '@warden/observability';
import type { LeadScanReport } from '@warden/domain';

/** The lead miner's series; the runbook's monitoring section reads them. */
export function createLeadMetrics(registry: Registry) {
  const metrics = {
    scans: new Counter({
      name: 'lead_scans_total',
      help: 'Lead scans by window kind and how they ended (completed, failed, skipped)',
      labelNames: ['window', 'status'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'lead_scan_duration_seconds',
      help: 'Wall time of completed lead scans',
      labelNames: ['window'],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers: [registry],
    }),
    findings: new Counter({
      name: 'lead_findings_total',
      help: 'Raw findings of real (not dry-run) scans, by rule and outcome (new, duplicate, reopened, silenced)',
      labelNames: ['rule', 'outcome'],
      registers: [registry],
    }),
    tasks: new Counter({
      name: 'lead_follow_up_tasks_created_total',
      help: 'Follow-up tasks created, by severity of their finding',
      labelNames: ['severity'],
      registers: [registry],
    }),
    warnings: new Counter({
      name: 'lead_scan_warnings_total',
      help: 'Scan warnings by code (LEAD_SELF_CHECK_FAILED, LEAD_FINDINGS_TRUNCATED, LEAD_FOLLOW_UP_CONFLICT)',
      labelNames: ['code'],
      registers: [registry],
    }),
    lastSuccess: new Gauge({
      name: 'lead_last_success_timestamp_seconds',
      help: 'When a scan of this window kind last completed (alert when it gets old)',
      labelNames: ['window'],
      registers: [registry],
    }),
  };
  return {
    ...metrics,
    /** Counts one finished scan. */
    record(report: LeadScanReport): void {
      metrics.scans.inc({ window: report.window_kind, status: report.status });
      for (const warning of report.stats.warnings) metrics.warnings.inc({ code: warning.code });
      if (report.status !== 'completed') return;
      const seconds =
        (Date.parse(report.stats.completed_at ?? report.timestamp) - Date.parse(report.stats.started_at)) /
        1000;
      metrics.duration.observe({ window: report.window_kind }, Math.max(0, seconds));
      metrics.lastSuccess.set({ window: report.window_kind }, Date.now() / 1000);
      if (report.dry_run) return;
      for (const finding of report.findings) {
        metrics.findings.inc({ rule: finding.code, outcome: finding.outcome });
        if (finding.task_created) metrics.tasks.inc({ severity: finding.severity });
      }
    },
  };
}
export type LeadMetrics = ReturnType<typeof createLeadMetrics>;
