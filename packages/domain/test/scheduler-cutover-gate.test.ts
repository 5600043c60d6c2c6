import { describe, expect, it } from 'vitest';
import {
  ConflictError,
  TriggerDefinitionSchema,
  agentServedShare,
  changedDefinitionFields,
  checkAgentShareChange,
  checkBarChange,
  consistencyOf,
  definitionChangeAudits,
  migrationBarChanges,
  type TriggerDefinitionInput,
} from '../src/index.js';

const definition = (input: Partial<TriggerDefinitionInput> = {}) =>
  TriggerDefinitionSchema.parse({
    event_name: 'nightly-report',
    expression: '0 2 * * *',
    agent: { queue: 'agent' },
    fallback: { queue: 'legacy' },
    ...input,
  });
const none = consistencyOf([], 20);
const proven = consistencyOf(
  Array.from({ length: 20 }, () => true),
  20,
);
const change = (before: ReturnType<typeof definition>, next: ReturnType<typeof definition>, force = false) =>
  definitionChangeAudits({
    before,
    next,
    changed_fields: changedDefinitionFields(before, next),
    actor: 'mallory',
    force,
    consistency: none,
  });

describe('the agent served share', () => {
  it('should be 0 in shadow, with the kill switch or without an agent, 1 without a fallback, else the weight', () => {
    expect(agentServedShare(definition({ mode: 'shadow', migration_weight: 1 }))).toBe(0);
    expect(agentServedShare(definition({ fallback_strategy: 'always', migration_weight: 1 }))).toBe(0);
    expect(agentServedShare(definition({ agent: null, migration_weight: 0 }))).toBe(0);
    expect(agentServedShare(definition({ fallback: null, migration_weight: 1 }))).toBe(1);
    expect(agentServedShare(definition({ migration_weight: 0.3 }))).toBe(0.3);
  });
});

describe('the cutover gate', () => {
  it('should refuse leaving shadow onto a stored weight of 1 without proven consistency', () => {
    const before = definition({ mode: 'shadow' }); // migration_weight defaults to 1
    expect(() => change(before, definition({ mode: 'live' }))).toThrow(ConflictError);
    expect(() => change(before, definition({ mode: 'live' }))).toThrow(/agent's served share \(by mode\)/);
  });

  it('should refuse lifting the always kill switch and dropping the fallback onto the agent', () => {
    const killSwitch = definition({ fallback_strategy: 'always', migration_weight: 1 });
    expect(() => change(killSwitch, definition({ migration_weight: 1 }))).toThrow(/by fallback_strategy/);
    const half = definition({ migration_weight: 0.5 });
    expect(() => change(half, definition({ fallback: null, migration_weight: 1 }))).toThrow(ConflictError);
  });

  it("should judge a raise on the STORED bar, not the request's", () => {
    const before = definition({ migration_weight: 0 });
    const consistency = consistencyOf([true, true, true, false], 20);
    const verdict = checkAgentShareChange({
      before,
      next: definition({
        migration_weight: 1,
        migration: { consistency_threshold: 0.5, min_samples: 1 },
      }),
      consistency,
      force: false,
    });
    expect(verdict.allowed).toBe(false);
    expect(verdict.reason).toMatch(/only 4 shadow comparison\(s\), 10 needed/);
  });

  it('should refuse loosening the bar unless forced, and always allow tightening', () => {
    const before = definition({ migration_weight: 0 });
    expect(() =>
      change(before, definition({ migration_weight: 0, migration: { consistency_threshold: 0.5 } })),
    ).toThrow(/loosening the migration bar \(migration\.consistency_threshold 0\.99 → 0\.5\)/);
    expect(() =>
      change(before, definition({ migration_weight: 0, migration: { auto_rollback: false } })),
    ).toThrow(ConflictError);
    expect(() =>
      change(before, definition({ migration_weight: 0, migration: { compare_keys: ['id'] } })),
    ).toThrow(ConflictError);
    const tightened = change(before, definition({ migration_weight: 0, migration: { min_samples: 50 } }));
    expect(tightened.map((a) => a.event_type)).toEqual(['MIGRATION_BAR_CHANGED', 'TRIGGER_UPDATED']);
    const forced = change(
      before,
      definition({ migration_weight: 0, migration: { consistency_threshold: 0.5 } }),
      true,
    );
    expect(forced[0]).toMatchObject({
      event_type: 'MIGRATION_BAR_CHANGED',
      level: 'warn',
      payload: { by: 'mallory', forced: true },
    });
  });

  it('should mark each bar change loosening or tightening', () => {
    const before = definition().migration;
    expect(
      migrationBarChanges(before, { ...before, rollback_after_agent_failures: 5, min_samples: 20 }),
    ).toEqual([
      { field: 'min_samples', from: 10, to: 20, loosens: false },
      { field: 'rollback_after_agent_failures', from: 2, to: 5, loosens: true },
    ]);
    expect(checkBarChange([], false)).toMatchObject({ allowed: true, forced: false });
  });

  it('should allow a proven raise and audit the share it moved', () => {
    const before = definition({ mode: 'shadow' });
    const audits = definitionChangeAudits({
      before,
      next: definition({ mode: 'live', migration_weight: 1 }),
      changed_fields: ['mode'],
      actor: 'alice',
      force: false,
      consistency: proven,
    });
    expect(audits.map((a) => a.event_type)).toEqual([
      'MIGRATION_WEIGHT_CHANGED',
      'MIGRATION_MODE_CHANGED',
      'TRIGGER_UPDATED',
    ]);
    expect(audits[0]!.payload).toMatchObject({ agent_share: { from: 0, to: 1 }, forced: false });
  });
});
