/**
 * Declarative triggers: a file lists a tenant's triggers as they should be, and `warden triggers apply` turns it
 * into a plan — create, update (naming the fields), leave alone, and with `prune` delete what the file no longer
 * lists — shown before anything changes, like `kubectl apply` or `terraform plan`. Pure: the caller reads the
 * current triggers and applies the plan in one transaction.
 */
import { z } from 'zod';
import { TenantIdSchema } from '../scopes.js';
import { BUILT_IN_TRIGGER_TAG } from './built-in-triggers.js';
import { changedDefinitionFields } from './trigger-audits.js';
import { TriggerDefinitionSchema, type TriggerDefinition } from './trigger-definition.js';

/**
 * A triggers file: `triggers:` is the whole set wanted for one tenant (`tenant:` here or `--tenant`). Every
 * definition is validated as the API validates it; two entries with one name are refused.
 */
export const TriggersFileSchema = z
  .object({
    tenant: TenantIdSchema.optional(),
    triggers: z.array(TriggerDefinitionSchema),
  })
  .strict()
  .superRefine((file, ctx) => {
    const seen = new Map<string, number>();
    file.triggers.forEach((trigger, index) => {
      const first = seen.get(trigger.event_name);
      if (first !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['triggers', index, 'event_name'],
          message: `"${trigger.event_name}" is defined twice (also at triggers[${first}])`,
        });
      else seen.set(trigger.event_name, index);
    });
  });
export type TriggersFile = z.output<typeof TriggersFileSchema>;

export type TriggerPlanStep =
  | { action: 'create'; event_name: string; definition: TriggerDefinition }
  | { action: 'update'; event_name: string; definition: TriggerDefinition; changed_fields: string[] }
  | { action: 'unchanged'; event_name: string }
  | { action: 'delete'; event_name: string }
  /**
   * Not in the file, kept because `prune` was not asked for — or because it is a built-in trigger (`built_in`),
   * which a file manages only by listing it: pruning it would delete the tenant's lead scans for good.
   */
  | { action: 'keep'; event_name: string; built_in?: true };

export interface TriggerPlan {
  steps: TriggerPlanStep[];
  /** True when applying would change something. */
  changes: boolean;
}

/**
 * The plan from what is stored to what the file wants, ordered by name (creates, updates and deletes mixed, as
 * a reader scans a list). Nothing is deleted unless `prune`, and a built-in trigger only by `warden triggers delete`.
 */
export function planTriggerApply(
  current: readonly TriggerDefinition[],
  wanted: readonly TriggerDefinition[],
  options: { prune: boolean },
): TriggerPlan {
  const stored = new Map(current.map((definition) => [definition.event_name, definition]));
  const steps: TriggerPlanStep[] = wanted.map((definition) => {
    const before = stored.get(definition.event_name);
    if (!before) return { action: 'create', event_name: definition.event_name, definition };
    const changed_fields = changedDefinitionFields(before, definition);
    return changed_fields.length === 0
      ? { action: 'unchanged', event_name: definition.event_name }
      : { action: 'update', event_name: definition.event_name, definition, changed_fields };
  });
  const listed = new Set(wanted.map((d) => d.event_name));
  for (const { event_name, tags } of current) {
    if (listed.has(event_name)) continue;
    if (tags.includes(BUILT_IN_TRIGGER_TAG)) steps.push({ action: 'keep', event_name, built_in: true });
    else steps.push({ action: options.prune ? 'delete' : 'keep', event_name });
  }
  steps.sort((a, b) => (a.event_name < b.event_name ? -1 : a.event_name > b.event_name ? 1 : 0));
  return {
    steps,
    changes: steps.some((s) => s.action === 'create' || s.action === 'update' || s.action === 'delete'),
  };
}

const SYMBOLS: Record<TriggerPlanStep['action'], string> = {
  create: '+',
  update: '~',
  delete: '-',
  unchanged: '=',
  keep: ' ',
};

/** The plan as lines for a terminal: `+ create nightly-report`, `~ update sync (expression, max_daily_runs)`. */
export function formatTriggerPlan(plan: TriggerPlan): string {
  const lines = plan.steps.map((step) => {
    const detail =
      step.action === 'update'
        ? ` (${step.changed_fields.join(', ')})`
        : step.action === 'keep'
          ? step.built_in
            ? ' (built-in, not in the file; kept — delete it with `warden triggers delete`)'
            : ' (not in the file; kept — add --prune to delete it)'
          : '';
    return `${SYMBOLS[step.action]} ${step.action.padEnd(9)} ${step.event_name}${detail}`;
  });
  const count = (action: TriggerPlanStep['action']) => plan.steps.filter((s) => s.action === action).length;
  lines.push(
    `plan: ${count('create')} to create, ${count('update')} to update, ${count('delete')} to delete, ${count('unchanged')} unchanged`,
  );
  return lines.join('\n') + '\n';
}
