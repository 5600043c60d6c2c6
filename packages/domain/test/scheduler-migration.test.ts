import { describe, expect, it } from 'vitest';
import {
  MigrationConfigSchema,
  TriggerDefinitionSchema,
  TriggerPatchSchema,
  buildRollbackReport,
  checkWeightChange,
  chooseDecisionMode,
  compareOutputs,
  consecutiveFailures,
  consistencyOf,
  evaluateRedLines,
  mergeTriggerPatch,
  migrationBucket,
} from '../src/index.js';

const config = MigrationConfigSchema.parse({});
const at = (i: number) => new Date(Date.UTC(2025, 0, 1) + i * 60_000);
const choose = (
  weight: number,
  i: number,
  overrides: Partial<Parameters<typeof chooseDecisionMode>[0]> = {},
) =>
  chooseDecisionMode({
    trigger_id: 't-1',
    scheduled_for: at(i),
    mode: 'live',
    fallback_strategy: 'on_failure',
    migration_weight: weight,
    has_agent: true,
    has_fallback: true,
    ...overrides,
  });

describe('choosing agent or fallback', () => {
  it('should always pick the agent at weight 1 and the fallback at weight 0', () => {
    for (let i = 0; i < 200; i++) {
      expect(choose(1, i)).toBe('agent');
      expect(choose(0, i)).toBe('fallback');
    }
  });

  it('should send about 30 % of fires to the agent at weight 0.3', () => {
    let agent = 0;
    for (let i = 0; i < 10_000; i++) if (choose(0.3, i) === 'agent') agent += 1;
    expect(agent / 10_000).toBeGreaterThan(0.27);
    expect(agent / 10_000).toBeLessThan(0.33);
  });

  it('should pick the same path for the same fire every time (retries, other replicas)', () => {
    for (let i = 0; i < 100; i++) expect(choose(0.3, i)).toBe(choose(0.3, i));
    expect(migrationBucket('t-1', at(5))).toBe(migrationBucket('t-1', at(5)));
    expect(migrationBucket('t-1', at(5))).not.toBe(migrationBucket('t-2', at(5)));
  });

  it('should run both in shadow mode, only the fallback with "always", only the fallback without an agent', () => {
    expect(choose(0, 1, { mode: 'shadow' })).toBe('shadow');
    expect(choose(1, 1, { fallback_strategy: 'always' })).toBe('fallback');
    expect(choose(1, 1, { has_agent: false })).toBe('fallback');
  });
});

describe('comparing shadow outputs', () => {
  it('should compare the configured key fields only', () => {
    const result = compareOutputs(
      { total: 10, at: 'a', items: { n: 2 } },
      { total: 10, at: 'b', items: { n: 2 } },
      ['total', 'items.n'],
    );
    expect(result).toEqual({ equal: true, compared_keys: ['total', 'items.n'], differences: [] });
  });
  it('should report the differing fields', () => {
    const result = compareOutputs({ total: 11 }, { total: 10 }, ['total']);
    expect(result.equal).toBe(false);
    expect(result.differences).toEqual([{ key: 'total', agent: 11, fallback: 10 }]);
  });
  it('should compare the whole output as canonical JSON without keys', () => {
    expect(compareOutputs({ a: 1, b: 2 }, { b: 2, a: 1 }, []).equal).toBe(true);
    expect(compareOutputs({ a: 1 }, { a: 2 }, []).equal).toBe(false);
  });
});

describe('red lines', () => {
  it('should trip after 2 consecutive agent failures', () => {
    expect(consecutiveFailures(['failed', 'timeout', 'success'])).toBe(2);
    expect(
      evaluateRedLines({
        config,
        migrating: true,
        consecutive_agent_failures: 2,
        consistency: { rate: 1, samples: 20 },
      }),
    ).toMatchObject({ tripped: true, red_line: 'consecutive_agent_failures' });
    expect(
      evaluateRedLines({
        config,
        migrating: true,
        consecutive_agent_failures: 1,
        consistency: { rate: 1, samples: 20 },
      }).tripped,
    ).toBe(false);
  });
  it('should trip when consistency over enough samples is below the bar', () => {
    const low = consistencyOf([...Array(9).fill(true), false, ...Array(10).fill(true)], 20);
    expect(low).toEqual({ rate: 0.95, samples: 20 });
    expect(
      evaluateRedLines({ config, migrating: true, consecutive_agent_failures: 0, consistency: low }),
    ).toMatchObject({ tripped: true, red_line: 'consistency_below_threshold' });
  });
  it('should not judge consistency on too few samples', () => {
    expect(
      evaluateRedLines({
        config,
        migrating: true,
        consecutive_agent_failures: 0,
        consistency: { rate: 0, samples: 3 },
      }).tripped,
    ).toBe(false);
  });
  it('should do nothing for a trigger that is not migrating or has auto rollback off', () => {
    expect(
      evaluateRedLines({
        config,
        migrating: false,
        consecutive_agent_failures: 5,
        consistency: { rate: 0, samples: 20 },
      }).tripped,
    ).toBe(false);
    expect(
      evaluateRedLines({
        config: { ...config, auto_rollback: false },
        migrating: true,
        consecutive_agent_failures: 5,
        consistency: { rate: 0, samples: 20 },
      }).tripped,
    ).toBe(false);
  });
});

describe('weight changes', () => {
  const good = { rate: 1, samples: 20 };
  it('should always allow lowering', () => {
    expect(
      checkWeightChange({
        from: 1,
        to: 0,
        has_fallback: true,
        config,
        consistency: { rate: null, samples: 0 },
        force: false,
      }).allowed,
    ).toBe(true);
  });
  it('should allow raising with proven consistency', () => {
    expect(
      checkWeightChange({ from: 0, to: 0.3, has_fallback: true, config, consistency: good, force: false })
        .allowed,
    ).toBe(true);
  });
  it('should refuse raising without enough shadow runs, saying what to do', () => {
    const verdict = checkWeightChange({
      from: 0,
      to: 0.5,
      has_fallback: true,
      config,
      consistency: { rate: 1, samples: 3 },
      force: false,
    });
    expect(verdict.allowed).toBe(false);
    expect(verdict.reason).toMatch(/only 3 shadow comparison\(s\), 10 needed/);
  });
  it('should refuse raising below the bar unless forced', () => {
    const low = { rate: 0.9, samples: 20 };
    expect(
      checkWeightChange({ from: 0, to: 1, has_fallback: true, config, consistency: low, force: false })
        .allowed,
    ).toBe(false);
    expect(
      checkWeightChange({ from: 0, to: 1, has_fallback: true, config, consistency: low, force: true }),
    ).toMatchObject({ allowed: true, reason: expect.stringMatching(/^forced despite/) });
  });
});

describe('the rollback report', () => {
  it('should say what tripped, list the last runs and sample the differences', () => {
    const report = buildRollbackReport({
      event_name: 'nightly-report',
      red_line: 'consecutive_agent_failures',
      detail: 'the agent failed 2 times in a row',
      now: new Date('2025-06-01T00:00:00Z'),
      from: { migration_weight: 0, mode: 'shadow' },
      consistency: { rate: 0.5, samples: 2 },
      last_runs: [
        {
          execution_id: 'e-1',
          scheduled_for: '2025-06-01T00:00:00.000Z',
          status: 'fallback',
          decision_mode: 'shadow',
          agent_outcome: 'failed',
          error: 'agent failed: boom',
          equal: false,
        },
      ],
      diff_samples: [{ execution_id: 'e-0', differences: [{ key: 'total', agent: 11, fallback: 10 }] }],
    });
    expect(report.to).toEqual({ migration_weight: 0, mode: 'live' });
    expect(report.markdown).toMatch(/# Migration rolled back: nightly-report/);
    expect(report.markdown).toMatch(/consecutive_agent_failures/);
    expect(report.markdown).toMatch(/\| 2025-06-01T00:00:00.000Z \| fallback \| shadow \| failed \| no \|/);
    expect(report.markdown).toMatch(/`total`: agent 11 ≠ fallback 10/);
  });
});

describe('trigger definitions', () => {
  const base = { event_name: 'nightly-report', expression: '0 2 * * *', agent: { queue: 'reports-agent' } };

  it('should fill every documented default', () => {
    const d = TriggerDefinitionSchema.parse(base);
    expect(d).toMatchObject({
      timezone: 'UTC',
      fallback_strategy: 'on_failure',
      migration_weight: 1,
      mode: 'live',
      cooldown_seconds: 0,
      max_daily_runs: null,
      circuit_breaker: { window: 10, failure_threshold: 0.5, min_runs: 10, reset_timeout_seconds: 300 },
      overlap_policy: 'skip',
      catchup_window_seconds: 60,
      jitter_ms: 0,
      retry_on_failure: true,
      max_retries: 3,
      retry_delay_seconds: 60,
      priority: 0,
      tags: [],
      enabled: true,
    });
  });

  it('should default the weight to 0 for a fallback-only trigger', () => {
    expect(
      TriggerDefinitionSchema.parse({
        event_name: 'legacy',
        expression: '0 2 * * *',
        fallback: { url: 'http://legacy:8080/run' },
      }).migration_weight,
    ).toBe(0);
  });

  it('should accept timeout_ms as well as timeoutMs for an HTTP target', () => {
    const d = TriggerDefinitionSchema.parse({
      ...base,
      agent: { url: 'https://agent.internal/run', timeout_ms: 1500 },
    });
    expect(d.agent).toEqual({ url: 'https://agent.internal/run', timeoutMs: 1500 });
  });

  it.each([
    [{ ...base, expression: '*/5 * * * * *' }, 'expression', /6 fields/],
    [{ ...base, timezone: 'Mars/Olympus' }, 'timezone', /not an IANA time zone/],
    [{ ...base, migration_weight: 0.5 }, 'migration_weight', /no fallback handler/],
    [{ ...base, mode: 'shadow' }, 'mode', /needs both handlers/],
    [{ ...base, fallback_strategy: 'always' }, 'fallback_strategy', /no fallback handler/],
    [{ event_name: 'x', expression: '0 2 * * *' }, 'agent', /needs an agent or a fallback/],
    [{ ...base, agent: { queue: 'cron-fires' } }, 'agent', /Warden's own queues|must be/],
    [{ ...base, agent: { queue: 'a', url: 'http://x' } }, 'agent', /must be/],
    [
      { ...base, max_daily_cost_usd: 1, max_cost_per_run_usd: 2 },
      'max_cost_per_run_usd',
      /larger than max_daily_cost_usd/,
    ],
    [{ ...base, event_name: 'has space' }, 'event_name', /letters, digits/],
    [{ ...base, surprise: true }, '(root)', /Unrecognized key/i],
  ])('should refuse a bad definition, naming the field (%#)', (input, path, message) => {
    const result = TriggerDefinitionSchema.safeParse(input);
    expect(result.success).toBe(false);
    const issue = result.error!.issues.find(
      (i) => (i.path.length === 0 ? '(root)' : String(i.path[0])) === path,
    );
    expect(issue, JSON.stringify(result.error!.issues)).toBeDefined();
    expect(issue!.message).toMatch(message);
  });

  it('should merge a patch into nested objects and revalidate the whole', () => {
    const current = TriggerDefinitionSchema.parse({ ...base, fallback: { queue: 'legacy' } });
    const patch = TriggerPatchSchema.parse({ circuit_breaker: { window: 20 }, migration_weight: 0.2 });
    const merged = TriggerDefinitionSchema.parse(mergeTriggerPatch(current, patch));
    expect(merged.circuit_breaker).toEqual({
      window: 20,
      failure_threshold: 0.5,
      min_runs: 10,
      reset_timeout_seconds: 300,
    });
    expect(merged.migration_weight).toBe(0.2);
  });
});
