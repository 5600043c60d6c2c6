/**
 * The audit rows of a trigger's management: registering, changing (with the rule for raising the migration
 * weight), deleting and running it now. Pure: callers append what these return to the tenant's audit chain
 * in the transaction that makes the change, so a change and its audit rows commit together.
 */
import type { AuditLevel } from '../tasks.js';
import { canonicalJson } from '../canonical-json.js';
import { ConflictError } from '../errors.js';
import { checkAgentShareChange, checkBarChange, migrationBarChanges } from './cutover-gate.js';
import { consistencyOf, type Consistency } from './migration.js';
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
 * The audit rows of a definition change: `MIGRATION_WEIGHT_CHANGED` when the agent's served share or the weight
 * moved, `MIGRATION_MODE_CHANGED`, `MIGRATION_BAR_CHANGED` when the bar or the red lines changed, then
 * `TRIGGER_UPDATED` with the changed fields before and after. The cutover gate (cutover-gate.ts) judges the
 * change on the STORED migration config: raising the agent's share (the weight, leaving shadow, lifting
 * `always`) needs proven shadow consistency and loosening the bar is refused, unless `force`; a refusal is a
 * ConflictError (409) saying why.
 *
 * @param consistency - the shadow consistency measured with `before.migration`, over the comparisons since the
 *   trigger last entered shadow; read whenever the share may rise. @defaultValue no comparisons
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
  const consistency = input.consistency ?? consistencyOf([], before.migration.consistency_window);
  const share = checkAgentShareChange({ before, next, consistency, force });
  const refuse = (verdict: { reason: string; field?: string }): never => {
    throw new ConflictError(verdict.reason, [
      { path: verdict.field ?? 'migration_weight', message: verdict.reason },
    ]);
  };
  if (!share.allowed) refuse(share);
  const barChanges = migrationBarChanges(before.migration, next.migration);
  const bar = checkBarChange(barChanges, force);
  if (!bar.allowed) refuse(bar);
  const raises = share.to > share.from || next.migration_weight > before.migration_weight;
  if (next.migration_weight !== before.migration_weight || share.to !== share.from) {
    audits.push(
      triggerAudit(next.event_name, 'MIGRATION_WEIGHT_CHANGED', raises ? 'warn' : 'info', {
        by: actor,
        from: before.migration_weight,
        to: next.migration_weight,
        agent_share: { from: share.from, to: share.to },
        reason: share.reason,
        forced: share.forced,
        consistency,
        judged_on: {
          consistency_threshold: before.migration.consistency_threshold,
          min_samples: before.migration.min_samples,
          consistency_window: before.migration.consistency_window,
        },
      }),
    );
  }
  if (next.mode !== before.mode)
    audits.push(
      triggerAudit(next.event_name, 'MIGRATION_MODE_CHANGED', share.to > share.from ? 'warn' : 'info', {
        by: actor,
        from: before.mode,
        to: next.mode,
        forced: share.forced,
      }),
    );
  if (barChanges.length > 0)
    audits.push(
      triggerAudit(next.event_name, 'MIGRATION_BAR_CHANGED', bar.forced ? 'warn' : 'info', {
        by: actor,
        changes: barChanges,
        reason: bar.reason,
        forced: bar.forced,
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
