/**
 * The audit rows of a trigger's management: registering, changing (with the rule for raising the migration
 * weight), deleting and running it now. Pure: callers append what these return to the tenant's audit chain
 * in the transaction that makes the change, so a change and its audit rows commit together.
 */
import type { AuditLevel } from '../tasks.js';
import { canonicalJson } from '../canonical-json.js';
import { ConflictError } from '../errors.js';
import { checkWeightChange, consistencyOf, type Consistency } from './migration.js';
import { triggerAuditTaskId } from './trigger-view.js';
import { TriggerDefinitionSchema, type Target, type TriggerDefinition } from './trigger-definition.js';

/** An audit row before it joins a tenant's chain (the writer adds the tenant and the chain fields). */
export interface AuditDraft {
  task_id: string;
  event_type: string;
  level: AuditLevel;
  payload: Record<string, unknown>;
}

/** An audit row on the trigger's own trail (`task_id = trigger:<event_name>`). */
export function triggerAudit(
  eventName: string,
  eventType: string,
  level: AuditLevel,
  payload: Record<string, unknown>,
): AuditDraft {
  return { task_id: triggerAuditTaskId(eventName), event_type: eventType, level, payload };
}

/** Every field of a definition, in schema order (what a change is compared on). */
export const TRIGGER_DEFINITION_FIELDS = Object.keys(
  TriggerDefinitionSchema.parse({ event_name: 'x', expression: '* * * * *', agent: { queue: 'x' } }),
) as Array<keyof TriggerDefinition>;

/**
 * The fields whose values differ (compared as canonical JSON, so key order in nested objects does not count).
 */
export function changedDefinitionFields(before: TriggerDefinition, next: TriggerDefinition): string[] {
  return TRIGGER_DEFINITION_FIELDS.filter(
    (field) => canonicalJson(before[field] ?? null) !== canonicalJson(next[field] ?? null),
  );
}

/** The definition without secrets (HTTP headers keep their names only), for audit rows. */
export function auditableDefinition(d: TriggerDefinition): Record<string, unknown> {
  const strip = (t: Target | null) =>
    t && 'url' in t && t.headers ? { ...t, headers: Object.keys(t.headers) } : t;
  return { ...d, agent: strip(d.agent), fallback: strip(d.fallback) };
}

function pickFields(value: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(fields.map((f) => [f, value[f]]));
}

/** `TRIGGER_REGISTERED`: a new trigger, with its whole definition. */
export function triggerRegisteredAudit(input: {
  definition: TriggerDefinition;
  trigger_id: string;
  actor: string;
}): AuditDraft {
  return triggerAudit(input.definition.event_name, 'TRIGGER_REGISTERED', 'info', {
    by: input.actor,
    trigger_id: input.trigger_id,
    definition: auditableDefinition(input.definition),
  });
}

/**
 * The audit rows of a definition change: `MIGRATION_WEIGHT_CHANGED` and `MIGRATION_MODE_CHANGED` when those
 * moved, then `TRIGGER_UPDATED` with the changed fields before and after. Raising the weight of a trigger
 * with a fallback needs proven shadow consistency unless `force`: otherwise a ConflictError (409) says why.
 *
 * @param consistency - the shadow consistency over the next definition's window; read only when the weight
 *   moved. @defaultValue no comparisons
 */
export function definitionChangeAudits(input: {
  before: TriggerDefinition;
  next: TriggerDefinition;
  changed_fields: readonly string[];
  actor: string;
  force: boolean;
  consistency?: Consistency;
}): AuditDraft[] {
  const { before, next, actor, force } = input;
  const audits: AuditDraft[] = [];
  if (next.migration_weight !== before.migration_weight) {
    const consistency = input.consistency ?? consistencyOf([], next.migration.consistency_window);
    const verdict = checkWeightChange({
      from: before.migration_weight,
      to: next.migration_weight,
      has_fallback: next.fallback !== null,
      config: next.migration,
      consistency,
      force,
    });
    if (!verdict.allowed)
      throw new ConflictError(verdict.reason, [{ path: 'migration_weight', message: verdict.reason }]);
    audits.push(
      triggerAudit(
        next.event_name,
        'MIGRATION_WEIGHT_CHANGED',
        next.migration_weight > before.migration_weight ? 'warn' : 'info',
        {
          by: actor,
          from: before.migration_weight,
          to: next.migration_weight,
          reason: verdict.reason,
          forced: force && verdict.reason.startsWith('forced'),
          consistency,
        },
      ),
    );
  }
  if (next.mode !== before.mode)
    audits.push(
      triggerAudit(next.event_name, 'MIGRATION_MODE_CHANGED', 'info', {
        by: actor,
        from: before.mode,
        to: next.mode,
      }),
    );
  audits.push(
    triggerAudit(next.event_name, 'TRIGGER_UPDATED', 'info', {
      by: actor,
      changed_fields: input.changed_fields,
      before: pickFields(auditableDefinition(before), input.changed_fields),
      after: pickFields(auditableDefinition(next), input.changed_fields),
    }),
  );
  return audits;
}

/** `TRIGGER_DELETED`. */
export function triggerDeletedAudit(input: {
  event_name: string;
  trigger_id: string;
  actor: string;
}): AuditDraft {
  return triggerAudit(input.event_name, 'TRIGGER_DELETED', 'warn', {
    by: input.actor,
    trigger_id: input.trigger_id,
  });
}

/** `TRIGGER_RUN_REQUESTED`: a trigger-now request, with its params. */
export function runRequestedAudit(input: {
  event_name: string;
  execution_id: string;
  params: Record<string, unknown>;
  override_overlap: boolean;
  actor: string;
}): AuditDraft {
  return triggerAudit(input.event_name, 'TRIGGER_RUN_REQUESTED', 'info', {
    by: input.actor,
    execution_id: input.execution_id,
    params: input.params,
    override_overlap: input.override_overlap,
  });
}
