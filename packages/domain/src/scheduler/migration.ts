/**
 * Moving a legacy job to an agent (docs/scheduler.md, "Migration guide"): which handler serves a fire, how
 * shadow outputs are compared, when a migration must roll back and when the weight may go up. The rollback
 * itself (report, follow-up task) is in migration-rollback.ts.
 */
import { canonicalJson, sha256Hex } from '../canonical-json.js';
import type { DecisionMode } from './execution.js';
import type { FallbackStrategy, MigrationConfig, TriggerMode } from './trigger-definition.js';

/**
 * A number in [0, 1) fixed by the trigger and the fire time: the same fire (and its retries, and any
 * replica that handles it) always falls on the same side of the weight.
 */
export function migrationBucket(triggerId: string, scheduledFor: Date): number {
  return parseInt(sha256Hex(`${triggerId}|${scheduledFor.getTime()}`).slice(0, 12), 16) / 2 ** 48;
}

/** The handler(s) a fire goes to. */
export function chooseDecisionMode(input: {
  trigger_id: string;
  scheduled_for: Date;
  mode: TriggerMode;
  fallback_strategy: FallbackStrategy;
  migration_weight: number;
  has_agent: boolean;
  has_fallback: boolean;
}): DecisionMode {
  if (!input.has_agent) return 'fallback';
  if (input.mode === 'shadow' && input.has_fallback) return 'shadow';
  if (input.fallback_strategy === 'always' && input.has_fallback) return 'fallback';
  if (input.migration_weight >= 1) return 'agent';
  if (input.migration_weight <= 0) return 'fallback';
  return migrationBucket(input.trigger_id, input.scheduled_for) < input.migration_weight
    ? 'agent'
    : 'fallback';
}

export interface OutputDifference {
  key: string;
  agent: unknown;
  fallback: unknown;
}

export interface OutputComparison {
  equal: boolean;
  /** The fields compared; `["(whole output)"]` when no keys are configured. */
  compared_keys: string[];
  /** Up to 10 differing fields, values cut to 500 characters. */
  differences: OutputDifference[];
}

function pick(value: unknown, path: string): unknown {
  let current: unknown = value;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function sample(value: unknown): unknown {
  const text = value === undefined ? 'undefined' : canonicalJson(value);
  return text.length <= 500 ? value : `${text.slice(0, 500)}…`;
}

/** Compares the agent's and the fallback's outputs on `keys` (dotted paths), or whole, as canonical JSON. */
export function compareOutputs(
  agentOutput: unknown,
  fallbackOutput: unknown,
  keys: readonly string[],
): OutputComparison {
  const compared = keys.length > 0 ? [...keys] : ['(whole output)'];
  const differences: OutputDifference[] = [];
  for (const key of compared) {
    const a = keys.length > 0 ? pick(agentOutput, key) : agentOutput;
    const f = keys.length > 0 ? pick(fallbackOutput, key) : fallbackOutput;
    if (canonicalJson(a ?? null) !== canonicalJson(f ?? null))
      differences.push({ key, agent: sample(a), fallback: sample(f) });
  }
  return { equal: differences.length === 0, compared_keys: compared, differences: differences.slice(0, 10) };
}

export interface Consistency {
  /** Share of equal comparisons, or null with none. */
  rate: number | null;
  samples: number;
}

/** Consistency over the latest comparisons (newest first; only the first `window` count). */
export function consistencyOf(equalities: readonly boolean[], window: number): Consistency {
  const considered = equalities.slice(0, window);
  if (considered.length === 0) return { rate: null, samples: 0 };
  return { rate: considered.filter(Boolean).length / considered.length, samples: considered.length };
}

/** Consecutive failures at the head of the agent's latest outcomes (newest first). */
export function consecutiveFailures(agentOutcomes: readonly ('success' | 'failed' | 'timeout')[]): number {
  let count = 0;
  for (const outcome of agentOutcomes) {
    if (outcome === 'success') break;
    count += 1;
  }
  return count;
}

export type RedLine = 'consecutive_agent_failures' | 'consistency_below_threshold';

export interface RedLineVerdict {
  tripped: boolean;
  red_line?: RedLine;
  detail?: string;
}

/**
 * Whether an ongoing migration must roll back. A trigger is migrating when it has both handlers and either
 * runs in shadow or sends some runs to the agent (weight > 0).
 */
export function evaluateRedLines(input: {
  config: MigrationConfig;
  migrating: boolean;
  consecutive_agent_failures: number;
  consistency: Consistency;
}): RedLineVerdict {
  const { config } = input;
  if (!input.migrating || !config.auto_rollback) return { tripped: false };
  if (input.consecutive_agent_failures >= config.rollback_after_agent_failures) {
    return {
      tripped: true,
      red_line: 'consecutive_agent_failures',
      detail: `the agent failed ${input.consecutive_agent_failures} times in a row (red line: ${config.rollback_after_agent_failures})`,
    };
  }
  const { rate, samples } = input.consistency;
  if (rate !== null && samples >= config.min_samples && rate < config.consistency_threshold) {
    return {
      tripped: true,
      red_line: 'consistency_below_threshold',
      detail: `shadow consistency ${(rate * 100).toFixed(1)} % over the last ${samples} comparisons is below ${(config.consistency_threshold * 100).toFixed(1)} %`,
    };
  }
  return { tripped: false };
}

/** Whether the weight may move from `from` to `to`. Lowering is always allowed; raising needs proven consistency. */
export function checkWeightChange(input: {
  from: number;
  to: number;
  has_fallback: boolean;
  config: MigrationConfig;
  consistency: Consistency;
  force: boolean;
}): { allowed: boolean; reason: string } {
  if (input.to <= input.from)
    return {
      allowed: true,
      reason: input.to === input.from ? 'unchanged' : 'lowering the weight is always allowed',
    };
  if (!input.has_fallback) return { allowed: true, reason: 'no fallback to migrate from' };
  const { rate, samples } = input.consistency;
  const bar = `${(input.config.consistency_threshold * 100).toFixed(1)} %`;
  if (rate !== null && samples >= input.config.min_samples && rate >= input.config.consistency_threshold) {
    return {
      allowed: true,
      reason: `shadow consistency ${(rate * 100).toFixed(1)} % over ${samples} runs meets ${bar}`,
    };
  }
  const why =
    rate === null || samples < input.config.min_samples
      ? `only ${samples} shadow comparison(s), ${input.config.min_samples} needed — run the trigger with mode "shadow" first`
      : `shadow consistency ${(rate * 100).toFixed(1)} % over ${samples} runs is below ${bar}`;
  if (input.force) return { allowed: true, reason: `forced despite: ${why}` };
  return {
    allowed: false,
    reason: `raising migration_weight from ${input.from} to ${input.to} needs consistency ≥ ${bar}: ${why} (or pass force)`,
  };
}
