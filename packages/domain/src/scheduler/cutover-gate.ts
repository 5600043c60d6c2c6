/**
 * The cutover gate: what a definition change may do to a migration without proof. Three moves hand a trigger's
 * served output to the agent — raising `migration_weight`, leaving `shadow` (with whatever weight it stored),
 * lifting the `always` kill switch — and one changes what counts as proof (the migration bar). Each is judged
 * against the STORED migration config and the comparisons recorded since the trigger last entered shadow, never
 * against the request's own numbers, so one PATCH cannot lower the bar and clear it at once. `force` is the
 * audited override; the API grants it only to keys with the `triggers:approve` scope.
 */
import { checkWeightChange, type Consistency } from './migration.js';
import type { MigrationConfig, TriggerDefinition } from './trigger-definition.js';

/**
 * The share of fires whose served output comes from the agent: 0 in shadow (the fallback is served), with the
 * `always` kill switch, or without an agent; 1 without a fallback; the weight otherwise.
 */
export function agentServedShare(d: TriggerDefinition): number {
  if (d.agent === null) return 0;
  if (d.fallback === null) return 1;
  if (d.mode === 'shadow' || d.fallback_strategy === 'always') return 0;
  return d.migration_weight;
}

/** The migration settings that define the proof: the bar and the red lines. */
export const MIGRATION_BAR_FIELDS = [
  'compare_keys',
  'consistency_threshold',
  'consistency_window',
  'min_samples',
  'rollback_after_agent_failures',
  'auto_rollback',
] as const satisfies ReadonlyArray<keyof MigrationConfig>;

export interface BarChange {
  field: (typeof MIGRATION_BAR_FIELDS)[number];
  from: unknown;
  to: unknown;
  /** True when the change makes the bar easier to clear or the red lines slower to trip. */
  loosens: boolean;
}

/**
 * The bar fields that changed, each marked loosening or not. Tightening is a higher threshold, more samples, fewer
 * failures to roll back, or turning auto-rollback on; any other change (the compared keys, the window, the
 * opposite directions) can make the bar easier and counts as loosening.
 */
export function migrationBarChanges(before: MigrationConfig, next: MigrationConfig): BarChange[] {
  const changes: BarChange[] = [];
  const tightens: {
    [K in BarChange['field']]: (from: MigrationConfig[K], to: MigrationConfig[K]) => boolean;
  } = {
    compare_keys: () => false,
    consistency_window: () => false,
    consistency_threshold: (from, to) => to > from,
    min_samples: (from, to) => to > from,
    rollback_after_agent_failures: (from, to) => to < from,
    auto_rollback: (_from, to) => to,
  };
  for (const field of MIGRATION_BAR_FIELDS) {
    const from = before[field];
    const to = next[field];
    if (JSON.stringify(from) === JSON.stringify(to)) continue;
    const tightened = (tightens[field] as (a: unknown, b: unknown) => boolean)(from, to);
    changes.push({ field, from, to, loosens: !tightened });
  }
  return changes;
}

export interface CutoverVerdict {
  allowed: boolean;
  /** Why, in words (also the 409's message). */
  reason: string;
  /** Allowed only because of `force`. */
  forced: boolean;
  /** The field a refusal names. */
  field?: string;
}

/**
 * Whether a change may raise the weight or the agent's served share from `before` to `next`. Judged on
 * `before`'s migration config and `consistency` (measured with that config, since the trigger last entered
 * shadow). Raising the weight is gated even in shadow, where it serves nothing yet: it is the number leaving
 * shadow would apply.
 */
export function checkAgentShareChange(input: {
  before: TriggerDefinition;
  next: TriggerDefinition;
  consistency: Consistency;
  force: boolean;
}): CutoverVerdict & { from: number; to: number } {
  const { before, next } = input;
  const from = agentServedShare(before);
  const to = agentServedShare(next);
  const judge = (change: { from: number; to: number; has_fallback: boolean }) =>
    checkWeightChange({
      ...change,
      config: before.migration,
      consistency: input.consistency,
      force: input.force,
    });
  const weight = judge({
    from: before.migration_weight,
    to: next.migration_weight,
    has_fallback: next.fallback !== null,
  });
  if (!weight.allowed || to <= from) return { ...verdictOf(weight), field: 'migration_weight', from, to };
  // A trigger that had no fallback has no legacy output to protect; every other raise needs proof.
  const field = shareField(before, next);
  const share = judge({ from, to, has_fallback: before.fallback !== null });
  const verdict = verdictOf(share);
  return {
    ...verdict,
    reason: share.reason.replace(
      /^raising migration_weight/,
      `raising the agent's served share (by ${field})`,
    ),
    forced: verdict.forced || verdictOf(weight).forced,
    field,
    from,
    to,
  };
}

function verdictOf(verdict: { allowed: boolean; reason: string }): CutoverVerdict {
  return {
    allowed: verdict.allowed,
    reason: verdict.reason,
    forced: verdict.allowed && verdict.reason.startsWith('forced'),
  };
}

/** Which field moved the share, for the refusal's `path`. */
function shareField(before: TriggerDefinition, next: TriggerDefinition): string {
  if (before.mode !== next.mode) return 'mode';
  if (before.fallback_strategy !== next.fallback_strategy) return 'fallback_strategy';
  if (before.agent === null && next.agent !== null) return 'agent';
  if (before.fallback !== null && next.fallback === null) return 'fallback';
  return 'migration_weight';
}

/** Whether a change of the migration bar may go through: tightening always, loosening only when forced. */
export function checkBarChange(changes: readonly BarChange[], force: boolean): CutoverVerdict {
  const loosened = changes.filter((c) => c.loosens);
  if (loosened.length === 0)
    return {
      allowed: true,
      reason: changes.length ? 'tightening the bar is always allowed' : 'unchanged',
      forced: false,
    };
  const what = loosened
    .map((c) => `migration.${c.field} ${JSON.stringify(c.from)} → ${JSON.stringify(c.to)}`)
    .join(', ');
  if (force) return { allowed: true, reason: `forced: loosening the migration bar (${what})`, forced: true };
  return {
    allowed: false,
    reason: `loosening the migration bar (${what}) needs force, which needs the triggers:approve scope`,
    forced: false,
    field: `migration.${loosened[0]!.field}`,
  };
}
