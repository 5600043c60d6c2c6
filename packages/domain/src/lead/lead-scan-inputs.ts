import type { DecisionType, Severity } from '../decisions.js';
import type { LeadScanWindow } from './lead-window.js';

/**
 * What the six rules read: the supervisor's decisions in a window, already counted and grouped (in SQL, by
 * packages/db), so that however many decisions the window holds, this stays small: counts, a few candidate
 * rows per rule (at most the rules file's `max_findings_per_rule`) and sample ids.
 *
 * A decision's time is the time of the event it decided (`source_event_ts`), so a window holds what happened
 * in it; `processed_at − source_event_ts` is its lag.
 */
export interface LeadScanInputs {
  window: LeadScanWindow;
  /** Decisions in `[start, end)`, in total and by type. */
  decisions: { total: number; by_type: Partial<Record<DecisionType, number>> };
  /** Every finding code seen on BLOCK decisions in the window, with how many decisions carried it. */
  blocked_codes: BlockedCode[];
  /** Tasks paused at least `min_pauses` times in the window whose last decision there is a BLOCK. */
  churn_tasks: LeadCandidates<ChurnTask>;
  /** Tasks whose first RETRY in the window is followed by a BLOCK. */
  retry_then_block: LeadCandidates<RetryThenBlock>;
  lag: DecisionLag;
  /** Findings (and REDLINE findings among them) on the decisions of this window and of the one before it. */
  finding_shares: { current: FindingShare; previous: FindingShare };
  /** ALLOW decisions carrying a finding at least as severe as `min_finding_severity`. */
  high_risk_allows: LeadCandidates<HighRiskAllow>;
  /** Counts taken independently of the rules, for the self-check. */
  self_check: SelfCheckCounts;
}

/** A decision and its task: what evidence samples name. */
export interface LeadSample {
  decision_id: string;
  task_id: string;
}

/** Candidate rows of a rule, cut at the limit; `total` counts all of them. */
export interface LeadCandidates<T> {
  total: number;
  items: T[];
}

export interface BlockedCode {
  code: string;
  /** BLOCK decisions in the window carrying this code (a decision counts once however often it names it). */
  decisions: number;
  /** Newest first. */
  samples: LeadSample[];
}

export interface ChurnTask {
  task_id: string;
  pauses: number;
  last_decision_type: DecisionType;
  last_decision_id: string;
  /** Oldest first. */
  pause_decision_ids: string[];
}

export interface RetryThenBlock {
  task_id: string;
  /** The task's first RETRY in the window. */
  retry_decision_id: string;
  /** The first BLOCK after it. */
  block_decision_id: string;
  retries: number;
  blocks: number;
}

export interface DecisionLag {
  /** Decisions with a lag to measure (`processed_at ≥ source_event_ts`; negative lags, clock skew, are dropped). */
  samples: number;
  /** How many of them lagged more than the rule's `threshold_ms`. */
  over_threshold: number;
  /** The rule's percentile of lag, read only when it exceeds the threshold (it costs a sort). */
  percentile_ms: number | null;
  max_ms: number | null;
  /** The slowest decisions, slowest first; read with `percentile_ms`. */
  slowest: Array<LeadSample & { lag_ms: number }>;
}

export interface FindingShare {
  findings: number;
  redline: number;
}

export interface HighRiskAllow extends LeadSample {
  /** Codes of the findings at or above the severity floor. */
  codes: string[];
  /** The most severe of them. */
  severity: Severity;
  /** What enforcement would have decided, when the ALLOW came from monitor mode. */
  would_have: string | null;
}

export interface SelfCheckCounts {
  /** BLOCK decisions in the window, from the audit event types alone. */
  blocks: number;
  /** ALLOW decisions with a HIGH or CRITICAL finding, found by JSON containment rather than the rule's query. */
  high_risk_allows: number;
  /** Findings in the window without a `code` or `kind`: invisible to every rule. */
  findings_without_code: number;
}

/**
 * True when the `percentile` (nearest rank) of `samples` values exceeds a threshold, knowing only how many
 * values exceed it: the value at rank ⌈p·n⌉ is above the threshold exactly when fewer than ⌈p·n⌉ values are
 * at or below it. Lets SQL decide the lag rule with one count instead of sorting every decision.
 */
export function percentileExceeds(samples: number, overThreshold: number, percentile: number): boolean {
  if (samples <= 0) return false;
  const rank = Math.max(1, Math.ceil(percentile * samples - 1e-9));
  return samples - overThreshold < rank;
}
