import { severityAtLeast } from '../decisions.js';
import type { LeadEvidence, LeadFindingDraft } from './lead-finding.js';
import { leadFingerprint } from './lead-fingerprint.js';
import type { LeadRuleCode, LeadRulesFile } from './lead-rules-file.js';
import { percentileExceeds, type LeadSample, type LeadScanInputs } from './lead-scan-inputs.js';

/**
 * The six lead rules (docs/lead-miner.md), each a pure function of the aggregated inputs and the rules file. Packages/db
 * does the counting in SQL and may pre-filter by the same thresholds to keep its answer small; each rule
 * still checks its own condition, so what fires is decided here and tested without a database.
 */
export type LeadRule = (inputs: LeadScanInputs, rules: LeadRulesFile) => LeadFindingDraft[];

function draft(
  rule: LeadRuleCode,
  inputs: LeadScanInputs,
  rules: LeadRulesFile,
  parts: {
    dimensions: Record<string, string>;
    title: string;
    description: string;
    evidence: Omit<LeadEvidence, 'window' | 'sample_decision_ids' | 'sample_task_ids'>;
    samples: LeadSample[];
  },
): LeadFindingDraft {
  const size = rules.limits.sample_size;
  const kind = inputs.window.kind;
  return {
    fingerprint: leadFingerprint(rule, kind, parts.dimensions),
    rule_code: rule,
    severity: rules.rules[rule].severity,
    title: parts.title,
    description: parts.description,
    window_kind: kind,
    dimensions: parts.dimensions,
    evidence: {
      ...parts.evidence,
      sample_decision_ids: unique(parts.samples.map((s) => s.decision_id)).slice(0, size),
      sample_task_ids: unique(parts.samples.map((s) => s.task_id)).slice(0, size),
      window: { start: inputs.window.start.toISOString(), end: inputs.window.end.toISOString() },
    },
  };
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

/** A finding code on BLOCK decisions occurs more than `threshold` times in the window → HIGH, per code. */
export const blockedReasonSpike: LeadRule = (inputs, rules) => {
  const { threshold } = rules.rules.blocked_reason_spike;
  return inputs.blocked_codes
    .filter((entry) => entry.decisions > threshold)
    .sort((a, b) => b.decisions - a.decisions || a.code.localeCompare(b.code))
    .map((entry) =>
      draft('blocked_reason_spike', inputs, rules, {
        dimensions: { finding_code: entry.code },
        title: `Spike of blocks for ${entry.code}`,
        description: `${entry.decisions} BLOCK decisions in the last ${inputs.window.kind} carried ${entry.code} (threshold: more than ${threshold})`,
        evidence: {
          counts: { blocked_decisions: entry.decisions },
          thresholds: { more_than: threshold },
          details: { finding_code: entry.code },
        },
        samples: entry.samples,
      }),
    );
};

/** A task was PAUSED at least `min_pauses` times and its last decision is BLOCK → MEDIUM, per task. */
export const pauseBlockChurn: LeadRule = (inputs, rules) => {
  const { min_pauses } = rules.rules.pause_block_churn;
  return inputs.churn_tasks.items
    .filter((task) => task.pauses >= min_pauses && task.last_decision_type === 'BLOCK')
    .map((task) =>
      draft('pause_block_churn', inputs, rules, {
        dimensions: { task_id: task.task_id },
        title: `Task ${task.task_id} was paused repeatedly, then blocked`,
        description: `task ${task.task_id} was paused ${task.pauses} times in the last ${inputs.window.kind} and its last decision is BLOCK (${task.last_decision_id})`,
        evidence: {
          counts: { pauses: task.pauses },
          thresholds: { min_pauses },
          details: { last_decision_id: task.last_decision_id, pause_decision_ids: task.pause_decision_ids },
        },
        samples: [
          { decision_id: task.last_decision_id, task_id: task.task_id },
          ...task.pause_decision_ids.map((id) => ({ decision_id: id, task_id: task.task_id })),
        ],
      }),
    );
};

/** A RETRY recommendation later followed by a BLOCK for the same task → HIGH, per task and first retry. */
export const retryRecommendedButFails: LeadRule = (inputs, rules) =>
  inputs.retry_then_block.items.map((task) =>
    draft('retry_recommended_but_fails', inputs, rules, {
      dimensions: { task_id: task.task_id, retry_decision_id: task.retry_decision_id },
      title: `Retry recommended for task ${task.task_id}, then blocked`,
      description: `task ${task.task_id} was recommended a retry (${task.retry_decision_id}) and later blocked (${task.block_decision_id}) in the last ${inputs.window.kind}`,
      evidence: {
        counts: { retries: task.retries, blocks: task.blocks },
        thresholds: {},
        details: { retry_decision_id: task.retry_decision_id, block_decision_id: task.block_decision_id },
      },
      samples: [
        { decision_id: task.retry_decision_id, task_id: task.task_id },
        { decision_id: task.block_decision_id, task_id: task.task_id },
      ],
    }),
  );

/** The decision-lag percentile (p95 by default, nearest rank) is above `threshold_ms` → MEDIUM, one per window kind. */
export const decisionLagAnomaly: LeadRule = (inputs, rules) => {
  const { percentile, threshold_ms, min_decisions } = rules.rules.decision_lag_anomaly;
  const { lag } = inputs;
  if (lag.samples < min_decisions || !percentileExceeds(lag.samples, lag.over_threshold, percentile))
    return [];
  const label = `p${Math.round(percentile * 1000) / 10}`;
  const measured = lag.percentile_ms === null ? 'above the threshold' : `${Math.round(lag.percentile_ms)} ms`;
  return [
    draft('decision_lag_anomaly', inputs, rules, {
      dimensions: {},
      title: `Decision lag ${label} above ${threshold_ms} ms`,
      description: `decision lag ${label} was ${measured} over ${lag.samples} decisions in the last ${inputs.window.kind}; ${lag.over_threshold} took longer than ${threshold_ms} ms`,
      evidence: {
        counts: { decisions: lag.samples, over_threshold: lag.over_threshold },
        thresholds: { percentile, threshold_ms },
        details: {
          percentile_ms: lag.percentile_ms,
          max_ms: lag.max_ms,
          slowest: lag.slowest.map((s) => ({ decision_id: s.decision_id, lag_ms: Math.round(s.lag_ms) })),
        },
      },
      samples: lag.slowest,
    }),
  ];
};

/** Rounded so that a rise of exactly the threshold never fires through floating-point noise (0.15 − 0.05). */
const exceeds = (value: number, threshold: number) => Math.round(value * 1e9) > Math.round(threshold * 1e9);

/**
 * The REDLINE share of findings rose by more than `threshold` over the previous window (or over `baseline`
 * when the previous window held no findings) → HIGH, one per window kind.
 */
export const redlineRatioIncrease: LeadRule = (inputs, rules) => {
  const { threshold, baseline, min_findings } = rules.rules.redline_ratio_increase;
  const { current, previous } = inputs.finding_shares;
  if (current.findings < min_findings || current.findings === 0) return [];
  const share = current.redline / current.findings;
  const previousShare = previous.findings > 0 ? previous.redline / previous.findings : undefined;
  const reference = previousShare ?? baseline;
  if (!exceeds(share - reference, threshold)) return [];
  const pct = (value: number) => `${Math.round(value * 1000) / 10}%`;
  return [
    draft('redline_ratio_increase', inputs, rules, {
      dimensions: {},
      title: 'Share of REDLINE findings rose',
      description:
        `REDLINE findings were ${pct(share)} of all findings in the last ${inputs.window.kind} (${current.redline} of ${current.findings}), ` +
        (previousShare === undefined
          ? `against a baseline of ${pct(baseline)} (the previous window held no findings)`
          : `against ${pct(previousShare)} in the window before (${previous.redline} of ${previous.findings})`),
      evidence: {
        counts: {
          findings: current.findings,
          redline_findings: current.redline,
          previous_findings: previous.findings,
          previous_redline_findings: previous.redline,
        },
        thresholds: { rise_more_than: threshold, baseline },
        details: {
          share: round(share),
          reference_share: round(reference),
          reference: previousShare === undefined ? 'baseline' : 'previous_window',
          rise: round(share - reference),
        },
      },
      samples: [],
    }),
  ];
};

const round = (value: number) => Math.round(value * 10_000) / 10_000;

/** An ALLOW decision carries a finding at least `min_finding_severity` (HIGH) → CRITICAL, per decision. */
export const highRiskAllow: LeadRule = (inputs, rules) => {
  const floor = rules.rules.high_risk_allow.min_finding_severity;
  return inputs.high_risk_allows.items
    .filter((item) => severityAtLeast(item.severity, floor))
    .map((item) =>
      draft('high_risk_allow', inputs, rules, {
        dimensions: { decision_id: item.decision_id },
        title: `ALLOW with a ${item.severity} finding on task ${item.task_id}`,
        description:
          `decision ${item.decision_id} allowed task ${item.task_id} although it carried ${item.codes.join(', ')} (${item.severity})` +
          (item.would_have ? `; monitor mode: enforcement would have decided ${item.would_have}` : ''),
        evidence: {
          counts: { findings_at_or_above: item.codes.length },
          thresholds: { min_finding_severity: floor },
          details: { codes: item.codes, severity: item.severity, would_have: item.would_have },
        },
        samples: [item],
      }),
    );
};

/** Every rule by code, in evaluation order. */
export const LEAD_RULES: Record<LeadRuleCode, LeadRule> = {
  blocked_reason_spike: blockedReasonSpike,
  pause_block_churn: pauseBlockChurn,
  retry_recommended_but_fails: retryRecommendedButFails,
  decision_lag_anomaly: decisionLagAnomaly,
  redline_ratio_increase: redlineRatioIncrease,
  high_risk_allow: highRiskAllow,
};
