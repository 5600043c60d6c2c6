import type { LeadFindingDraft } from '@warden/domain';

/** A raw finding of `pause_block_churn` with empty evidence; override what a test looks at. */
export function leadDraft(fingerprint: string, overrides: Partial<LeadFindingDraft> = {}): LeadFindingDraft {
  return {
    fingerprint,
    rule_code: 'pause_block_churn',
    severity: 'MEDIUM',
    title: `finding ${fingerprint}`,
    description: 'numbers of this scan',
    window_kind: '24h',
    dimensions: {},
    evidence: {
      counts: {},
      thresholds: {},
      sample_decision_ids: [],
      sample_task_ids: [],
      window: { start: '', end: '' },
    },
    ...overrides,
  };
}
