// The six lead rules, the self-check, the upsert semantics and the follow-up task, as pure functions of their
// inputs (docs/lead-miner.md). The integration suites run the same rules over decisions the supervisor made.
import { describe, expect, it } from 'vitest';
import {
  LeadRulesFileSchema,
  LeadSilenceRequestSchema,
  ValidationError,
  defaultLeadRules,
  evaluateLeadRules,
  leadFingerprint,
  leadFollowUpTask,
  leadScanWindow,
  parseLeadWindow,
  parsePolicyYaml,
  percentileExceeds,
  planLeadFindingUpsert,
  silenceEnd,
  type LeadRulesFile,
  type LeadScanInputs,
} from '../src/index.js';

const NOW = new Date('2026-11-22T10:00:00.000Z');

function inputs(overrides: Partial<LeadScanInputs> = {}, window = '24h'): LeadScanInputs {
  return {
    window: leadScanWindow(parseLeadWindow(window), NOW),
    decisions: { total: 0, by_type: {} },
    blocked_codes: [],
    churn_tasks: { total: 0, items: [] },
    retry_then_block: { total: 0, items: [] },
    lag: { samples: 0, over_threshold: 0, percentile_ms: null, max_ms: null, slowest: [] },
    finding_shares: { current: { findings: 0, redline: 0 }, previous: { findings: 0, redline: 0 } },
    high_risk_allows: { total: 0, items: [] },
    self_check: { blocks: 0, high_risk_allows: 0, findings_without_code: 0 },
    ...overrides,
  };
}

function rules(overrides: Parameters<typeof LeadRulesFileSchema.parse>[0] = {}): LeadRulesFile {
  return LeadRulesFileSchema.parse(overrides);
}

const codes = (i: LeadScanInputs, r: LeadRulesFile = defaultLeadRules()) =>
  evaluateLeadRules(i, r).findings.map((f) => f.rule_code);
const samples = (n: number, task = 't') =>
  Array.from({ length: n }, (_, i) => ({ decision_id: `d-${i}`, task_id: `${task}-${i}` }));

describe('blocked_reason_spike', () => {
  it('should fire above 5 blocks of a code and not at 5', () => {
    const result = evaluateLeadRules(
      inputs({
        blocked_codes: [
          { code: 'A', decisions: 6, samples: samples(6) },
          { code: 'B', decisions: 5, samples: samples(5) },
        ],
      }),
      defaultLeadRules(),
    );
    expect(result.findings).toHaveLength(1);
    expect(result.findings[0]).toMatchObject({
      rule_code: 'blocked_reason_spike',
      severity: 'HIGH',
      fingerprint: leadFingerprint('blocked_reason_spike', '24h', { finding_code: 'A' }),
      dimensions: { finding_code: 'A' },
      evidence: {
        counts: { blocked_decisions: 6 },
        thresholds: { more_than: 5 },
        window: { start: '2026-11-21T10:00:00.000Z', end: '2026-11-22T10:00:00.000Z' },
      },
    });
    expect(result.findings[0]!.evidence.sample_decision_ids).toHaveLength(5);
    expect(result.findings[0]!.evidence.sample_task_ids).toHaveLength(5);
  });

  it('should honour the threshold, severity and sample size of the rules file', () => {
    const result = evaluateLeadRules(
      inputs({ blocked_codes: [{ code: 'A', decisions: 3, samples: samples(3) }] }),
      rules({
        rules: { blocked_reason_spike: { threshold: 2, severity: 'CRITICAL' } },
        limits: { sample_size: 1 },
      }),
    );
    expect(result.findings[0]).toMatchObject({
      severity: 'CRITICAL',
      evidence: { sample_decision_ids: ['d-0'] },
    });
  });
});

describe('pause_block_churn', () => {
  const task = (pauses: number, last: 'BLOCK' | 'ALLOW') => ({
    task_id: `t-${pauses}-${last}`,
    pauses,
    last_decision_type: last,
    last_decision_id: 'last',
    pause_decision_ids: ['p1', 'p2'],
  });
  it('should fire for 2 pauses ending in BLOCK, not for 1 pause nor for a last ALLOW', () => {
    const result = evaluateLeadRules(
      inputs({ churn_tasks: { total: 3, items: [task(2, 'BLOCK'), task(1, 'BLOCK'), task(3, 'ALLOW')] } }),
      defaultLeadRules(),
    );
    expect(result.findings.map((f) => f.dimensions)).toEqual([{ task_id: 't-2-BLOCK' }]);
    expect(result.findings[0]).toMatchObject({
      severity: 'MEDIUM',
      evidence: {
        counts: { pauses: 2 },
        thresholds: { min_pauses: 2 },
        sample_decision_ids: ['last', 'p1', 'p2'],
      },
    });
  });
});

describe('retry_recommended_but_fails', () => {
  it('should fire per task, keyed by the task and its first retry', () => {
    const result = evaluateLeadRules(
      inputs({
        retry_then_block: {
          total: 1,
          items: [{ task_id: 't', retry_decision_id: 'r1', block_decision_id: 'b1', retries: 2, blocks: 1 }],
        },
      }),
      defaultLeadRules(),
    );
    expect(result.findings[0]).toMatchObject({
      rule_code: 'retry_recommended_but_fails',
      severity: 'HIGH',
      dimensions: { task_id: 't', retry_decision_id: 'r1' },
      evidence: { sample_decision_ids: ['r1', 'b1'] },
    });
  });
});

describe('decision_lag_anomaly', () => {
  const lag = (samplesCount: number, over: number) => ({
    samples: samplesCount,
    over_threshold: over,
    percentile_ms: 9000,
    max_ms: 12_000,
    slowest: [{ decision_id: 'slow', task_id: 't', lag_ms: 12_000 }],
  });
  it('should fire when the p95 decision is over the threshold (2 of 20 slow), not when it is not (1 of 20)', () => {
    expect(codes(inputs({ lag: lag(20, 2) }))).toEqual(['decision_lag_anomaly']);
    expect(codes(inputs({ lag: lag(20, 1) }))).toEqual([]);
  });
  it('should judge no fewer decisions than min_decisions', () => {
    expect(codes(inputs({ lag: lag(1, 1) }))).toEqual(['decision_lag_anomaly']);
    expect(
      codes(inputs({ lag: lag(1, 1) }), rules({ rules: { decision_lag_anomaly: { min_decisions: 2 } } })),
    ).toEqual([]);
  });
  it('should use nearest rank', () => {
    expect(percentileExceeds(20, 1, 0.95)).toBe(false);
    expect(percentileExceeds(20, 2, 0.95)).toBe(true);
    expect(percentileExceeds(21, 2, 0.95)).toBe(true);
    expect(percentileExceeds(100, 5, 0.95)).toBe(false);
    expect(percentileExceeds(100, 6, 0.95)).toBe(true);
    expect(percentileExceeds(0, 0, 0.95)).toBe(false);
    expect(percentileExceeds(1, 1, 0.5)).toBe(true);
  });
});

describe('redline_ratio_increase', () => {
  const shares = (current: [number, number], previous: [number, number]) => ({
    finding_shares: {
      current: { redline: current[0], findings: current[1] },
      previous: { redline: previous[0], findings: previous[1] },
    },
  });
  it('should not fire for a rise of exactly 0.10 and fire above it', () => {
    expect(codes(inputs(shares([2, 10], [1, 10])))).toEqual([]);
    expect(codes(inputs(shares([2, 9], [1, 10])))).toEqual(['redline_ratio_increase']);
    // 0.35 − 0.25 is 0.09999999999999998 in floating point: a rise of exactly the threshold all the same.
    expect(codes(inputs(shares([7, 20], [1, 4])))).toEqual([]);
  });
  it('should compare against the 0.05 baseline when the previous window held no findings', () => {
    expect(codes(inputs(shares([3, 20], [0, 0])))).toEqual([]);
    expect(codes(inputs(shares([4, 25], [0, 0])))).toEqual(['redline_ratio_increase']);
    const [finding] = evaluateLeadRules(inputs(shares([4, 25], [0, 0])), defaultLeadRules()).findings;
    expect(finding!.evidence.details).toMatchObject({
      reference: 'baseline',
      reference_share: 0.05,
      share: 0.16,
    });
  });
  it('should not fire with no findings in the window, or when the share fell', () => {
    expect(codes(inputs(shares([0, 0], [5, 10])))).toEqual([]);
    expect(codes(inputs(shares([1, 10], [5, 10])))).toEqual([]);
  });
});

describe('high_risk_allow', () => {
  const allow = (severity: 'HIGH' | 'CRITICAL' | 'MEDIUM') => ({
    decision_id: `d-${severity}`,
    task_id: 't',
    codes: ['C'],
    severity,
    would_have: 'BLOCK',
  });
  it('should fire per ALLOW with a HIGH or CRITICAL finding, CRITICAL severity, keyed by the decision', () => {
    const result = evaluateLeadRules(
      inputs({ high_risk_allows: { total: 3, items: [allow('HIGH'), allow('CRITICAL'), allow('MEDIUM')] } }),
      defaultLeadRules(),
    );
    expect(result.findings.map((f) => f.dimensions)).toEqual([
      { decision_id: 'd-HIGH' },
      { decision_id: 'd-CRITICAL' },
    ]);
    expect(result.findings.every((f) => f.severity === 'CRITICAL')).toBe(true);
  });
  it('should name a cut list in a LEAD_FINDINGS_TRUNCATED warning', () => {
    const result = evaluateLeadRules(
      inputs({ high_risk_allows: { total: 250, items: [allow('HIGH')] } }),
      defaultLeadRules(),
    );
    expect(result.warnings).toEqual([
      expect.objectContaining({
        code: 'LEAD_FINDINGS_TRUNCATED',
        details: { rule_code: 'high_risk_allow', candidates: 250, reported: 1 },
      }),
    ]);
  });
});

describe('evaluateLeadRules', () => {
  it('should skip disabled rules', () => {
    const data = inputs({ blocked_codes: [{ code: 'A', decisions: 9, samples: [] }] });
    expect(codes(data, rules({ rules: { blocked_reason_spike: { enabled: false } } }))).toEqual([]);
  });
});

describe('the self-check', () => {
  it('should warn when nothing fired over 5 blocks or a high-risk allow, and stay quiet otherwise', () => {
    const blind = evaluateLeadRules(
      inputs({ self_check: { blocks: 5, high_risk_allows: 1, findings_without_code: 0 } }),
      defaultLeadRules(),
    );
    expect(blind.warnings).toEqual([
      expect.objectContaining({
        code: 'LEAD_SELF_CHECK_FAILED',
        message:
          'no rule fired although 1 ALLOW decisions carried a HIGH or CRITICAL finding; 5 BLOCK decisions were made in the last 24h',
      }),
    ]);
    expect(
      evaluateLeadRules(
        inputs({ self_check: { blocks: 4, high_risk_allows: 0, findings_without_code: 0 } }),
        defaultLeadRules(),
      ).warnings,
    ).toEqual([]);
    const seen = inputs({
      blocked_codes: [{ code: 'A', decisions: 6, samples: [] }],
      self_check: { blocks: 6, high_risk_allows: 0, findings_without_code: 0 },
    });
    expect(evaluateLeadRules(seen, defaultLeadRules()).warnings).toEqual([]);
  });
  it('should warn about findings without a code or kind even when rules fired', () => {
    const data = inputs({
      blocked_codes: [{ code: 'A', decisions: 6, samples: [] }],
      self_check: { blocks: 6, high_risk_allows: 0, findings_without_code: 3 },
    });
    expect(evaluateLeadRules(data, defaultLeadRules()).warnings[0]!.message).toBe(
      '3 findings carry no code or kind, so no rule can see them in the last 24h',
    );
  });
});

describe('planLeadFindingUpsert', () => {
  const state = (
    status: 'open' | 'resolved' | 'silenced',
    linked: string | null = 'lead-x',
    until: Date | null = null,
  ) => ({ status, linked_task_id: linked, silenced_until: until });
  it('should follow the finding lifecycle: new, duplicate, reopened, silenced until the silence ends', () => {
    expect(planLeadFindingUpsert(undefined, NOW)).toEqual({
      outcome: 'new',
      status: 'open',
      silence_expired: false,
      needs_follow_up: true,
    });
    expect(planLeadFindingUpsert(state('open'), NOW)).toEqual({
      outcome: 'duplicate',
      status: 'open',
      silence_expired: false,
      needs_follow_up: false,
    });
    expect(planLeadFindingUpsert(state('open', null), NOW)).toMatchObject({
      outcome: 'duplicate',
      needs_follow_up: true,
    });
    expect(planLeadFindingUpsert(state('resolved'), NOW)).toEqual({
      outcome: 'reopened',
      status: 'open',
      silence_expired: false,
      needs_follow_up: false,
    });
    expect(planLeadFindingUpsert(state('silenced', null, new Date(NOW.getTime() + 1)), NOW)).toEqual({
      outcome: 'silenced',
      status: 'silenced',
      silence_expired: false,
      needs_follow_up: false,
    });
    expect(planLeadFindingUpsert(state('silenced', null, NOW), NOW)).toEqual({
      outcome: 'duplicate',
      status: 'open',
      silence_expired: true,
      needs_follow_up: true,
    });
  });
});

describe('leadFollowUpTask', () => {
  const finding = (severity: 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL') => ({
    fingerprint: '0123456789abcdef',
    rule_code: 'pause_block_churn',
    severity,
    title: 'Task t was paused repeatedly, then blocked',
    description: 'd',
    window_kind: '7d',
    dimensions: { task_id: 't' },
    evidence: { counts: { pauses: 2 } },
    first_seen_at: NOW.toISOString(),
  });
  it.each([
    ['CRITICAL', 1, 'ready'],
    ['HIGH', 2, 'ready'],
    ['MEDIUM', 3, 'draft'],
    ['LOW', 4, 'draft'],
  ] as const)('should give a %s finding priority %i, %s', (severity, priority, status) => {
    const task = leadFollowUpTask(finding(severity), { scan_id: 's' });
    expect(task).toMatchObject({
      task_id: 'lead-0123456789abcdef',
      title: '[LEAD][7d] pause_block_churn - Task t was paused repeatedly, then blocked',
      priority,
      status,
    });
    expect(task.metadata).toMatchObject({
      kind: 'lead_follow_up',
      priority,
      scan_id: 's',
      finding: { fingerprint: '0123456789abcdef', severity, evidence: { counts: { pauses: 2 } } },
    });
  });
});

describe('the rules file', () => {
  it('should give every default for an empty file', () => {
    expect(parsePolicyYaml('', LeadRulesFileSchema, 'r.yaml')).toEqual(defaultLeadRules());
    expect(defaultLeadRules().rules.decision_lag_anomaly).toEqual({
      enabled: true,
      severity: 'MEDIUM',
      percentile: 0.95,
      threshold_ms: 5000,
      min_decisions: 1,
    });
  });
  it('should refuse an unknown field or a bad value, naming its path', () => {
    expect(() =>
      parsePolicyYaml(
        'rules:\n  decision_lag_anomaly:\n    treshold_ms: 10\n',
        LeadRulesFileSchema,
        'r.yaml',
      ),
    ).toThrow(/r\.yaml: rules\.decision_lag_anomaly: Unrecognized key: "treshold_ms"/);
    try {
      parsePolicyYaml(
        'rules:\n  redline_ratio_increase:\n    threshold: 1.5\n',
        LeadRulesFileSchema,
        'r.yaml',
      );
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).details[0]!.path).toBe('rules.redline_ratio_increase.threshold');
    }
  });
});

describe('silenceEnd', () => {
  it('should default to 7 days, take `for` or `until`, and refuse the past or more than a year', () => {
    expect(silenceEnd(LeadSilenceRequestSchema.parse({}), NOW)).toEqual({
      until: new Date('2026-11-29T10:00:00.000Z'),
    });
    expect(silenceEnd(LeadSilenceRequestSchema.parse({ for: '12h' }), NOW)).toEqual({
      until: new Date('2026-11-22T22:00:00.000Z'),
    });
    expect(silenceEnd(LeadSilenceRequestSchema.parse({ until: '2026-12-01T00:00:00Z' }), NOW)).toEqual({
      until: new Date('2026-12-01T00:00:00Z'),
    });
    expect(silenceEnd(LeadSilenceRequestSchema.parse({ until: '2026-11-01T00:00:00Z' }), NOW)).toEqual({
      error: { path: 'until', message: 'the silence must end in the future' },
    });
    expect(silenceEnd(LeadSilenceRequestSchema.parse({ for: '400d' }), NOW)).toEqual({
      error: { path: 'for', message: 'a silence lasts at most 365 days' },
    });
    expect(LeadSilenceRequestSchema.safeParse({ for: '1d', until: '2026-12-01T00:00:00Z' }).success).toBe(
      false,
    );
  });
});
