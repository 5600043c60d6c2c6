import { describe, expect, it } from 'vitest';
import {
  assertKnownEventType,
  ConflictError,
  diffPolicySources,
  enforceEventType,
  enforcementFor,
  parsePolicySource,
  parsePromotionInputs,
  parseRatePercent,
  promotionVerdict,
  ValidationError,
  WouldHaveSummarizer,
  type MonitoredDecision,
  type PolicyInput,
} from '../src/index.js';
import shippedPolicy from '../../../infra/policies/supervisor.yaml?raw';

const bootstrap = shippedPolicy;
const monitored = bootstrap.replace('  default: enforce #', '  default: monitor #');

let next = 0;
function decision(decisionType: string, wouldHave: string | null, codes: string[] = []): MonitoredDecision {
  next++;
  return {
    task_id: `task-${next}`,
    event_id: `event-${next}`,
    decision_id: `decision-${next}`,
    decision_type: decisionType,
    would_have: wouldHave,
    finding_codes: codes,
  };
}

function summarise(decisions: MonitoredDecision[], options = {}) {
  const summarizer = new WouldHaveSummarizer(options);
  for (const d of decisions) summarizer.add(d);
  return summarizer.summary();
}

/** The mode the supervisor itself would pick for an event of `eventType` from `tenantId` under `source`. */
function modeUnder(source: string, tenantId: string, eventType: string) {
  const config = parsePolicySource('supervisor', source, 'test');
  return enforcementFor({ config, event: { tenant_id: tenantId, event_type: eventType } } as PolicyInput);
}

describe('WouldHaveSummarizer', () => {
  it('should count what enforcement would have decided, and the rate of stopping decisions', () => {
    const summary = summarise([
      ...Array.from({ length: 6 }, () => decision('ALLOW', null)),
      decision('ALLOW', 'BLOCK', ['REDLINE_FORBIDDEN_COMMAND']),
      decision('ALLOW', 'PAUSE', ['RISK_X', 'RISK_X']),
      decision('ALLOW', 'RETRY', ['FAILURE_Y']),
      decision('REQUIRE_REVIEW', null),
    ]);
    expect(summary.decisions).toBe(10);
    expect(summary.would_have).toEqual({ ALLOW: 6, BLOCK: 1, PAUSE: 1, RETRY: 1, REQUIRE_REVIEW: 1 });
    expect(summary.changed).toBe(3);
    expect(summary.stopped).toBe(2);
    expect(summary.stop_rate).toBe(0.2);
    // A code counted once per decision, from changed decisions only.
    expect(summary.top_findings).toEqual([
      { code: 'FAILURE_Y', count: 1 },
      { code: 'REDLINE_FORBIDDEN_COMMAND', count: 1 },
      { code: 'RISK_X', count: 1 },
    ]);
  });

  it('should keep a few samples, stopping decisions first, and the commonest codes first', () => {
    const summary = summarise(
      [
        decision('ALLOW', 'RETRY', ['A']),
        decision('ALLOW', 'BLOCK', ['B']),
        decision('ALLOW', 'BLOCK', ['B']),
        decision('ALLOW', 'PAUSE', ['B', 'C']),
      ],
      { samples: 2, topFindings: 1 },
    );
    expect(summary.samples.map((s) => s.would_have)).toEqual(['BLOCK', 'BLOCK']);
    expect(summary.samples[0]).toMatchObject({ task_id: expect.any(String), event_id: expect.any(String) });
    expect(summary.top_findings).toEqual([{ code: 'B', count: 3 }]);
  });

  it('should read an unknown decision type as REQUIRE_REVIEW, never as ALLOW', () => {
    const summary = summarise([decision('ALLOW', 'SOMETHING')]);
    expect(summary.would_have.REQUIRE_REVIEW).toBe(1);
    expect(summary.would_have.ALLOW).toBe(0);
  });

  it('should give a rate of 0 without decisions', () => {
    expect(summarise([])).toMatchObject({ decisions: 0, stopped: 0, stop_rate: 0, samples: [] });
  });
});

describe('promotionVerdict', () => {
  const input = { eventType: 'TASK_CREATED', since: '7d', maxRate: 0.01 };

  it('should pass at the threshold and fail above it', () => {
    const at = summarise([
      decision('ALLOW', 'BLOCK'),
      ...Array.from({ length: 99 }, () => decision('ALLOW', null)),
    ]);
    expect(promotionVerdict(at, input)).toMatchObject({ passes: true });
    expect(promotionVerdict(at, input).reason).toContain('1 of 100 TASK_CREATED decisions');
    const above = summarise([
      decision('ALLOW', 'PAUSE'),
      ...Array.from({ length: 98 }, () => decision('ALLOW', null)),
    ]);
    const verdict = promotionVerdict(above, input);
    expect(verdict.passes).toBe(false);
    expect(verdict.reason).toContain('(1.01%)');
    expect(verdict.reason).toContain('above the 1% threshold');
  });

  it('should not count RETRY against the threshold', () => {
    const retries = summarise([decision('ALLOW', 'RETRY'), decision('ALLOW', null)]);
    expect(promotionVerdict(retries, input).passes).toBe(true);
  });

  it('should not pass without evidence', () => {
    const verdict = promotionVerdict(summarise([]), input);
    expect(verdict.passes).toBe(false);
    expect(verdict.reason).toContain('no evidence');
  });
});

describe('parseRatePercent and parsePromotionInputs', () => {
  it('should read percentages', () => {
    expect(parseRatePercent('1%')).toBe(0.01);
    expect(parseRatePercent('0.5%')).toBe(0.005);
    expect(parseRatePercent('0%')).toBe(0);
    expect(parseRatePercent('100%')).toBe(1);
  });

  it.each(['1', '0.01', '101%', '-1%', 'one%', '', '1 %%'])('should refuse %j naming the field', (value) => {
    const error = (() => {
      try {
        parseRatePercent(value, '--max-rate');
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).details[0]!.path).toBe('--max-rate');
  });

  it('should name since for a bad window', () => {
    expect(() => parsePromotionInputs({ since: '7 days', max_rate: '1%' })).toThrow(/invalid since/);
    expect(parsePromotionInputs({ since: '24H', max_rate: '2%' })).toEqual({
      since: '24h',
      windowMs: 86_400_000,
      maxRate: 0.02,
    });
  });
});

describe('assertKnownEventType', () => {
  it('should accept a built-in event type, or any type with monitor-mode decisions', () => {
    expect(() => assertKnownEventType('TASK_CREATED', 0)).not.toThrow();
    expect(() => assertKnownEventType('DEPLOY_REQUESTED', 4)).not.toThrow();
  });

  it('should refuse a type with neither, naming the field', () => {
    expect(() => assertKnownEventType('TASK_CRATED', 0, '--event-type')).toThrow(
      /invalid --event-type: unknown event type "TASK_CRATED"/,
    );
  });
});

describe('enforceEventType', () => {
  const tenant = 'acme';

  it('should add the event type to an empty event_types map as the one changed line', () => {
    const promoted = enforceEventType(monitored, { tenantId: tenant, eventType: 'TASK_CREATED' });
    expect(modeUnder(promoted, tenant, 'TASK_CREATED')).toBe('enforce');
    expect(modeUnder(promoted, tenant, 'TASK_FAILED')).toBe('monitor');
    const diff = diffPolicySources(monitored, promoted, { before: 'a', after: 'b' });
    expect(diff).toMatchObject({ added: 1, removed: 1 });
    expect(diff.text).toContain('+  event_types: { TASK_CREATED: enforce }');
  });

  it('should switch an event type set to monitor in place, keeping its comment', () => {
    const source =
      'enforcement:\n  default: enforce\n  event_types:\n    TASK_FAILED: enforce\n    TASK_CREATED: monitor # new\n';
    const promoted = enforceEventType(source, { tenantId: tenant, eventType: 'TASK_CREATED' });
    expect(promoted).toBe(source.replace('TASK_CREATED: monitor', 'TASK_CREATED: enforce'));
  });

  it('should insert a line into a block map at its indentation', () => {
    const source =
      '# top\nenforcement:\n    default: monitor\n    event_types:\n        TASK_FAILED: monitor # c\n';
    const promoted = enforceEventType(source, { tenantId: tenant, eventType: 'TASK_CREATED' });
    expect(promoted).toBe(
      '# top\nenforcement:\n    default: monitor\n    event_types:\n        TASK_CREATED: enforce\n        TASK_FAILED: monitor # c\n',
    );
  });

  it('should add event_types where enforcement has none', () => {
    const source = 'version: "3"\nenforcement:\n  default: monitor\n';
    const promoted = enforceEventType(source, { tenantId: tenant, eventType: 'TASK_CREATED' });
    expect(promoted).toBe(
      'version: "3"\nenforcement:\n  event_types:\n    TASK_CREATED: enforce\n  default: monitor\n',
    );
  });

  it('should fall back to re-serialising a layout it does not edit in place, with the same meaning', () => {
    const source = 'enforcement: { default: monitor, event_types: { TASK_FAILED: monitor } }\n';
    const promoted = enforceEventType(source, { tenantId: tenant, eventType: 'TASK_CREATED' });
    expect(modeUnder(promoted, tenant, 'TASK_CREATED')).toBe('enforce');
    expect(modeUnder(promoted, tenant, 'TASK_FAILED')).toBe('monitor');
  });

  it('should refuse an event type that is enforced already', () => {
    expect(() => enforceEventType(bootstrap, { tenantId: tenant, eventType: 'TASK_CREATED' })).toThrow(
      ConflictError,
    );
    expect(() => enforceEventType(bootstrap, { tenantId: tenant, eventType: 'TASK_CREATED' })).toThrow(
      /enforced for tenant acme already \(by enforcement.default\)/,
    );
  });

  it('should refuse when the tenant itself is set to monitor, since the tenant setting wins', () => {
    const source = 'enforcement:\n  tenants:\n    acme: monitor\n';
    expect(() => enforceEventType(source, { tenantId: tenant, eventType: 'TASK_CREATED' })).toThrow(
      /tenant acme to monitor for every event type/,
    );
    // Another tenant's setting does not get in the way.
    const other = 'enforcement:\n  default: monitor\n  tenants:\n    globex: monitor\n';
    expect(
      modeUnder(
        enforceEventType(other, { tenantId: tenant, eventType: 'TASK_CREATED' }),
        tenant,
        'TASK_CREATED',
      ),
    ).toBe('enforce');
  });
});
