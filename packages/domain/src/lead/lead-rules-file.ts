import { z } from 'zod';
import { SeveritySchema } from '../decisions.js';

/** The six rule codes, in the order the miner evaluates and reports them (docs/lead-miner.md). */
export const LEAD_RULE_CODES = [
  'blocked_reason_spike',
  'pause_block_churn',
  'retry_recommended_but_fails',
  'decision_lag_anomaly',
  'redline_ratio_increase',
  'high_risk_allow',
] as const;
export const LeadRuleCodeSchema = z.enum(LEAD_RULE_CODES);
export type LeadRuleCode = z.infer<typeof LeadRuleCodeSchema>;

const enabled = z.boolean().default(true);
const ratio = z.number().min(0).max(1);

/**
 * The lead miner's rules file (`infra/policies/lead-rules.yaml`): which rules run, their thresholds and the
 * severity of what they find. Every field has its documented default (docs/lead-miner.md), so an empty file gives the documented
 * behaviour; unknown fields are refused so a typo cannot silently leave a default in force.
 */
export const LeadRulesFileSchema = z
  .object({
    /** Bumped by whoever edits the file; recorded on every scan. @defaultValue `1` */
    version: z.union([z.string(), z.number()]).transform(String).default('1'),
    rules: z
      .object({
        blocked_reason_spike: z
          .object({
            /** Run this rule. @defaultValue `true` */
            enabled,
            /** Severity of its findings. @defaultValue `HIGH` */
            severity: SeveritySchema.default('HIGH'),
            /** Fires when one finding code appears on more than this many BLOCK decisions. @defaultValue `5` */
            threshold: z.number().int().min(0).max(1_000_000).default(5),
          })
          .strict()
          .prefault({}),
        pause_block_churn: z
          .object({
            /** @defaultValue `true` */
            enabled,
            /** @defaultValue `MEDIUM` */
            severity: SeveritySchema.default('MEDIUM'),
            /** Fires when a task was paused at least this many times and its last decision is BLOCK. @defaultValue `2` */
            min_pauses: z.number().int().min(1).max(1000).default(2),
          })
          .strict()
          .prefault({}),
        retry_recommended_but_fails: z
          .object({
            /** @defaultValue `true` */
            enabled,
            /** @defaultValue `HIGH` */
            severity: SeveritySchema.default('HIGH'),
          })
          .strict()
          .prefault({}),
        decision_lag_anomaly: z
          .object({
            /** @defaultValue `true` */
            enabled,
            /** @defaultValue `MEDIUM` */
            severity: SeveritySchema.default('MEDIUM'),
            /** Which percentile of decision lag is compared (nearest rank). @defaultValue `0.95` */
            percentile: z.number().gt(0).max(1).default(0.95),
            /** Fires when that percentile is above this many milliseconds. @defaultValue `5000` */
            threshold_ms: z.number().int().min(0).max(86_400_000).default(5000),
            /** Fewer decisions than this in the window are not judged. @defaultValue `1` */
            min_decisions: z.number().int().min(1).max(1_000_000).default(1),
          })
          .strict()
          .prefault({}),
        redline_ratio_increase: z
          .object({
            /** @defaultValue `true` */
            enabled,
            /** @defaultValue `HIGH` */
            severity: SeveritySchema.default('HIGH'),
            /** Fires when the REDLINE share of findings rose by more than this. @defaultValue `0.10` */
            threshold: ratio.default(0.1),
            /** The share compared against when the previous window held no findings. @defaultValue `0.05` */
            baseline: ratio.default(0.05),
            /** Fewer findings than this in the window are not judged. @defaultValue `1` */
            min_findings: z.number().int().min(1).max(1_000_000).default(1),
          })
          .strict()
          .prefault({}),
        high_risk_allow: z
          .object({
            /** @defaultValue `true` */
            enabled,
            /** @defaultValue `CRITICAL` */
            severity: SeveritySchema.default('CRITICAL'),
            /** An ALLOW decision carrying a finding at least this severe fires. @defaultValue `HIGH` */
            min_finding_severity: SeveritySchema.default('HIGH'),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    self_check: z
      .object({
        /** Warn when the window held at least this many BLOCK decisions and no rule fired. @defaultValue `5` */
        min_blocks: z.number().int().min(1).max(1_000_000).default(5),
        /** Warn when it held at least this many high-risk ALLOW decisions and no rule fired. @defaultValue `1` */
        min_high_risk_allows: z.number().int().min(1).max(1_000_000).default(1),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        /**
         * Most findings one rule reports per scan; the rest are counted and named in a warning. Bounds the
         * follow-up tasks a flood (a monitor-mode roll-out) can open at once, and the scan's memory.
         * @defaultValue `200`
         */
        max_findings_per_rule: z.number().int().min(1).max(10_000).default(200),
        /** Sample decision and task ids kept in each finding's evidence. @defaultValue `5` */
        sample_size: z.number().int().min(0).max(5).default(5),
      })
      .strict()
      .prefault({}),
  })
  .strict();
export type LeadRulesFile = z.infer<typeof LeadRulesFileSchema>;

/** The rules with every default, as an empty file gives them. */
export function defaultLeadRules(): LeadRulesFile {
  return LeadRulesFileSchema.parse({});
}
