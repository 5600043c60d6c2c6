import { z } from 'zod';
import { SeveritySchema } from '../decisions.js';
import type { LeadScanWarning } from './lead-evaluate.js';
import type { LeadFindingOutcome } from './lead-finding.js';

/** Who asked for a scan. */
export const LeadScanTriggerSchema = z.enum(['cli', 'api', 'schedule', 'queue']);
export type LeadScanTrigger = z.infer<typeof LeadScanTriggerSchema>;

/** `queued` (API, waiting for the miner) → `running` → `completed` | `failed`; `skipped` when another scan held the lock. */
export const LeadScanStatusSchema = z.enum(['queued', 'running', 'completed', 'failed', 'skipped']);
export type LeadScanStatus = z.infer<typeof LeadScanStatusSchema>;

/** What a second scan of the same tenant and window says while the first runs (docs/lead-miner.md). */
export const LEAD_SCAN_SKIPPED_MESSAGE = 'another lead scan is running; skipped';

/**
 * A scan's counters. The first eight fields are the documented report's (docs/lead-miner.md); the rest are additions:
 * `tasks_skipped` counts findings that needed a follow-up and did not get one in this run (all of them in a
 * dry run, where they are what it "would create").
 */
export interface LeadScanStats {
  started_at: string;
  completed_at: string | null;
  raw_findings: number;
  /** Findings never stored before. */
  new_findings: number;
  /** Raw findings already stored (open, reopened or silenced). */
  duplicate_findings: number;
  tasks_created: number;
  tasks_skipped: number;
  error: string | null;
  /** Resolved findings seen again (regressions). */
  reopened_findings: number;
  /** Findings seen again while silenced (stored, nothing opened). */
  silenced_findings: number;
  /** Decisions in the window. */
  decisions_scanned: number;
  warnings: LeadScanWarning[];
}

/** One raw finding of a scan and what became of it. */
export interface LeadScanFindingResult {
  fingerprint: string;
  code: string;
  severity: z.infer<typeof SeveritySchema>;
  title: string;
  outcome: LeadFindingOutcome;
  /** The follow-up task: created now, linked earlier, or (dry run) the one it would create. */
  task_id: string | null;
  task_created: boolean;
  /** Dry run: this finding would get a follow-up task. */
  would_create_task: boolean;
}

/**
 * What `warden lead scan --json` prints and a scan job returns: the object documented in docs/lead-miner.md (`timestamp, window_kind,
 * window, findings_count, tasks_created, dry_run, stats`) plus the scan's id, tenant, status and findings.
 * `findings_count` is the number of new findings.
 */
export interface LeadScanReport {
  timestamp: string;
  window_kind: string;
  window: { start: string; end: string };
  findings_count: number;
  tasks_created: number;
  dry_run: boolean;
  stats: LeadScanStats;
  scan_id: string | null;
  tenant_id: string;
  status: 'completed' | 'failed' | 'skipped';
  forced: boolean;
  rules_version: string;
  findings: LeadScanFindingResult[];
}

/** A row of `lead_scans` as the API shows it. */
export const LeadScanViewSchema = z.object({
  scan_id: z.string(),
  window_kind: z.string(),
  window: z.object({ start: z.string(), end: z.string() }).nullable(),
  status: LeadScanStatusSchema,
  trigger: LeadScanTriggerSchema,
  dry_run: z.boolean(),
  forced: z.boolean(),
  requested_by: z.string().nullable(),
  created_at: z.string(),
  started_at: z.string().nullable(),
  completed_at: z.string().nullable(),
  stats: z.record(z.string(), z.unknown()),
  warnings: z.array(
    z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()) }),
  ),
  error: z.string().nullable(),
});
export type LeadScanView = z.infer<typeof LeadScanViewSchema>;

/** Progress of a running scan, for a CLI line or a job's progress. */
export interface LeadScanProgress {
  phase: 'lock' | 'read' | 'evaluate' | 'store' | 'follow_up';
  /** Steps done and expected in this phase (read: slices of the window; store/follow_up: findings). */
  done: number;
  total: number;
  message: string;
}
