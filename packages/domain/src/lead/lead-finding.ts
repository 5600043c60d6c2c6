import { z } from 'zod';
import { SeveritySchema, type Severity } from '../decisions.js';
import type { LeadRuleCode } from './lead-rules-file.js';

/** What a rule found, before it is stored: identified by its fingerprint. */
export interface LeadFindingDraft {
  fingerprint: string;
  rule_code: LeadRuleCode;
  severity: Severity;
  /** Short and stable across scans (no counts), so a task title made from it stays meaningful. */
  title: string;
  /** The numbers of this scan. */
  description: string;
  window_kind: string;
  /** What the fingerprint is made of besides the rule and window kind. */
  dimensions: Record<string, string>;
  evidence: LeadEvidence;
}

/** Why a finding fired: counts, the thresholds used and up to five sample decision and task ids. */
export interface LeadEvidence {
  counts: Record<string, number>;
  thresholds: Record<string, number | string>;
  sample_decision_ids: string[];
  sample_task_ids: string[];
  window: { start: string; end: string };
  /** Rule-specific facts (the finding code that spiked, the percentile measured…). */
  details?: Record<string, unknown>;
}

export const LeadFindingStatusSchema = z.enum(['open', 'resolved', 'silenced']);
export type LeadFindingStatus = z.infer<typeof LeadFindingStatusSchema>;

/** The part of a stored finding that decides what seeing it again does. */
export interface StoredLeadFindingState {
  status: LeadFindingStatus;
  linked_task_id: string | null;
  silenced_until: Date | null;
}

/**
 * What one raw finding of a scan is, against what was stored:
 * `new` (never seen), `duplicate` (seen and open), `reopened` (it was resolved: a regression),
 * `silenced` (silenced and the silence still runs: stored, but nothing is opened for it).
 */
export type LeadFindingOutcome = 'new' | 'duplicate' | 'reopened' | 'silenced';

export interface LeadFindingUpsertPlan {
  outcome: LeadFindingOutcome;
  /** The status to store. */
  status: LeadFindingStatus;
  /** A silence that ran out is lifted (stored as open again, audited). */
  silence_expired: boolean;
  /** The finding has no follow-up task and should get one (never for a running silence). */
  needs_follow_up: boolean;
}

/**
 * The upsert semantics of a finding (docs/lead-miner.md) as a function: a finding seen again keeps its first_seen_at and its link;
 * a resolved one reopens; a silenced one stays silent until `silenced_until`, then counts as open again.
 */
export function planLeadFindingUpsert(
  existing: StoredLeadFindingState | undefined,
  now: Date,
): LeadFindingUpsertPlan {
  if (!existing) return { outcome: 'new', status: 'open', silence_expired: false, needs_follow_up: true };
  const unlinked = existing.linked_task_id === null;
  switch (existing.status) {
    case 'open':
      return { outcome: 'duplicate', status: 'open', silence_expired: false, needs_follow_up: unlinked };
    case 'resolved':
      return { outcome: 'reopened', status: 'open', silence_expired: false, needs_follow_up: unlinked };
    case 'silenced': {
      const running = existing.silenced_until !== null && existing.silenced_until.getTime() > now.getTime();
      if (running)
        return { outcome: 'silenced', status: 'silenced', silence_expired: false, needs_follow_up: false };
      return { outcome: 'duplicate', status: 'open', silence_expired: true, needs_follow_up: unlinked };
    }
  }
}

/** A stored finding as the API and CLI show it. */
export const LeadFindingViewSchema = z.object({
  fingerprint: z.string(),
  code: z.string(),
  severity: SeveritySchema,
  title: z.string(),
  description: z.string(),
  window_kind: z.string(),
  dimensions: z.record(z.string(), z.string()),
  status: LeadFindingStatusSchema,
  count: z.number().int(),
  first_seen_at: z.string(),
  last_seen_at: z.string(),
  evidence: z.record(z.string(), z.unknown()),
  linked_task_id: z.string().nullable(),
  resolved_at: z.string().nullable(),
  resolved_by: z.string().nullable(),
  silenced_until: z.string().nullable(),
  silenced_by: z.string().nullable(),
  note: z.string().nullable(),
  last_scan_id: z.string().nullable(),
});
export type LeadFindingView = z.infer<typeof LeadFindingViewSchema>;
