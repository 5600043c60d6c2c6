import type { LeadFindingDraft } from './lead-finding.js';
import { LEAD_RULE_CODES, type LeadRuleCode, type LeadRulesFile } from './lead-rules-file.js';
import { LEAD_RULES } from './lead-rules.js';
import type { LeadScanInputs } from './lead-scan-inputs.js';

/** Codes of the warnings a scan records next to its findings. */
export type LeadScanWarningCode =
  /** The window held data the rules should have matched, yet nothing fired (or findings had no code). */
  | 'LEAD_SELF_CHECK_FAILED'
  /** A rule had more candidates than `max_findings_per_rule`; the rest were left for a later scan. */
  | 'LEAD_FINDINGS_TRUNCATED'
  /** A task with a finding's follow-up id exists and is someone else's; the finding stays unlinked. */
  | 'LEAD_FOLLOW_UP_CONFLICT';

export interface LeadScanWarning {
  code: LeadScanWarningCode;
  message: string;
  details: Record<string, unknown>;
}

export interface LeadEvaluation {
  /** Raw findings of every enabled rule, in rule order, deduplicated by fingerprint. */
  findings: LeadFindingDraft[];
  warnings: LeadScanWarning[];
}

/** Runs the enabled rules over the inputs, then the self-check. Pure: same inputs, same answer. */
export function evaluateLeadRules(inputs: LeadScanInputs, rules: LeadRulesFile): LeadEvaluation {
  const seen = new Set<string>();
  const findings: LeadFindingDraft[] = [];
  for (const code of LEAD_RULE_CODES) {
    if (!rules.rules[code].enabled) continue;
    for (const finding of LEAD_RULES[code](inputs, rules)) {
      if (seen.has(finding.fingerprint)) continue;
      seen.add(finding.fingerprint);
      findings.push(finding);
    }
  }
  return {
    findings,
    warnings: [...truncationWarnings(inputs, rules), ...leadSelfCheck(inputs, rules, findings.length)],
  };
}

function truncationWarnings(inputs: LeadScanInputs, rules: LeadRulesFile): LeadScanWarning[] {
  const lists: Array<[LeadRuleCode, { total: number; items: unknown[] }]> = [
    ['pause_block_churn', inputs.churn_tasks],
    ['retry_recommended_but_fails', inputs.retry_then_block],
    ['high_risk_allow', inputs.high_risk_allows],
  ];
  return lists
    .filter(([code, list]) => rules.rules[code].enabled && list.total > list.items.length)
    .map(([code, list]) => ({
      code: 'LEAD_FINDINGS_TRUNCATED' as const,
      message: `${code}: ${list.total} candidates, only the first ${list.items.length} were reported (limits.max_findings_per_rule); the rest are reported once these are dealt with or the limit is raised`,
      details: { rule_code: code, candidates: list.total, reported: list.items.length },
    }));
}

/**
 * The miner's self-check (docs/lead-miner.md): governance data that should have matched but produced nothing means the miner is
 * blind (the predecessor's findings lost their code and kind, and it reported a clean bill of health for
 * months). Also flags findings without a code or kind, which no rule can see.
 */
export function leadSelfCheck(
  inputs: LeadScanInputs,
  rules: LeadRulesFile,
  rawFindings: number,
): LeadScanWarning[] {
  const { blocks, high_risk_allows, findings_without_code } = inputs.self_check;
  const { min_blocks, min_high_risk_allows } = rules.self_check;
  const reasons: string[] = [];
  if (rawFindings === 0 && high_risk_allows >= min_high_risk_allows)
    reasons.push(`${high_risk_allows} ALLOW decisions carried a HIGH or CRITICAL finding`);
  if (rawFindings === 0 && blocks >= min_blocks) reasons.push(`${blocks} BLOCK decisions were made`);
  const blind = reasons.length > 0;
  if (findings_without_code > 0)
    reasons.push(`${findings_without_code} findings carry no code or kind, so no rule can see them`);
  if (reasons.length === 0) return [];
  return [
    {
      code: 'LEAD_SELF_CHECK_FAILED',
      message: `${blind ? 'no rule fired although ' : ''}${reasons.join('; ')} in the last ${inputs.window.kind}`,
      details: {
        raw_findings: rawFindings,
        blocks,
        high_risk_allows,
        findings_without_code,
        thresholds: { min_blocks, min_high_risk_allows },
      },
    },
  ];
}
