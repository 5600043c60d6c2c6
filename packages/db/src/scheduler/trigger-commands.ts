/**
 * Trigger management as one transaction each: register, update, delete, pause, resume. The API, the CLI and
 * the test suites call these, so they live with the repositories; but they only sequence reads and writes:
 * what a change may do and which audit rows it leaves come from @warden/domain (`definitionChangeAudits`,
 * `pauseByPerson`, `resumeByPerson`…). Call each inside `db.transaction()`: it locks the trigger row first.
 */
import {
  changedDefinitionFields,
  definitionChangeAudits,
  parseOrThrow,
  pauseByPerson,
  resumeByPerson,
  triggerDeletedAudit,
  triggerRegisteredAudit,
  triggerResumedAudit,
  TriggerDefinitionSchema,
  TriggerPatchSchema,
  mergeTriggerPatch,
  TRIGGER_DEFINITION_FIELDS,
  type TriggerDefinition,
} from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import { shadowConsistency } from './cron-migration.js';
import { reopenPausedFires } from './manual-runs.js';
import { appendTriggerAudits } from './trigger-audit-trail.js';
import type { TriggerRecord } from './trigger-rows.js';
import {
  insertTrigger,
  lockTriggerByName,
  lockTriggerByNameIfExists,
  markTriggerDeleted,
  writeTriggerDefinition,
  writeTriggerState,
} from './triggers.js';

export interface TriggerChange {
  trigger: TriggerRecord;
  created: boolean;
  /** False when the definition was already exactly this (an SDK re-registering on start). */
  changed: boolean;
  changed_fields: string[];
}

/**
 * Creates or updates (by event name) a tenant's trigger, audited. Raising the migration weight of a trigger
 * with a fallback needs proven shadow consistency unless `force`: otherwise a ConflictError (409) says why.
 * Weight and mode changes get their own audit rows.
 */
export async function registerTrigger(
  trx: QueryExecutor,
  input: { tenantId: string; definition: TriggerDefinition; actor: string; force?: boolean; now?: Date },
): Promise<TriggerChange> {
  const now = input.now ?? new Date();
  const d = input.definition;
  const existing = await lockTriggerByNameIfExists(trx, input.tenantId, d.event_name);
  if (existing) return applyDefinition(trx, existing, d, input.actor, input.force ?? false, now);
  const trigger = await insertTrigger(trx, { tenantId: input.tenantId, definition: d, now });
  await appendTriggerAudits(
    trx,
    input.tenantId,
    [triggerRegisteredAudit({ definition: d, trigger_id: trigger.trigger_id, actor: input.actor })],
    now,
  );
  return { trigger, created: true, changed: true, changed_fields: TRIGGER_DEFINITION_FIELDS };
}

/**
 * Applies a partial update to a trigger (nested objects merge), validated as a whole; see {@link
 * registerTrigger}.
 */
export async function updateTrigger(
  trx: QueryExecutor,
  input: { tenantId: string; eventName: string; patch: unknown; actor: string; force?: boolean; now?: Date },
): Promise<TriggerChange> {
  const now = input.now ?? new Date();
  const patch = parseOrThrow(TriggerPatchSchema, input.patch, 'request body');
  const current = await lockTriggerByName(trx, input.tenantId, input.eventName);
  const merged = mergeTriggerPatch(current.definition, patch);
  const definition = parseOrThrow(TriggerDefinitionSchema, merged, 'trigger');
  return applyDefinition(trx, current, definition, input.actor, input.force ?? false, now);
}

async function applyDefinition(
  trx: QueryExecutor,
  current: TriggerRecord,
  next: TriggerDefinition,
  actor: string,
  force: boolean,
  now: Date,
): Promise<TriggerChange> {
  const before = current.definition;
  const changed_fields = changedDefinitionFields(before, next);
  if (changed_fields.length === 0)
    return { trigger: current, created: false, changed: false, changed_fields };
  // The cutover gate judges on the STORED bar and the comparisons since the trigger last entered shadow, never
  // on numbers the same request brings.
  const consistency = await shadowConsistency(
    trx,
    current.trigger_id,
    before.migration.consistency_window,
    current.migration_window_started_at,
  );
  const audits = definitionChangeAudits({
    before,
    next,
    changed_fields,
    actor,
    force,
    consistency,
  });
  // Entering shadow starts a fresh comparison window: a verdict from before a rollback never carries over.
  const trigger = await writeTriggerDefinition(trx, current.trigger_id, next, now, {
    restartMigrationWindow: next.mode === 'shadow' && before.mode !== 'shadow',
  });
  await appendTriggerAudits(trx, current.tenant_id, audits, now);
  return { trigger, created: false, changed: true, changed_fields };
}

/** Deletes a trigger (the ledger stays, the name is free again); audited. */
export async function deleteTrigger(
  trx: QueryExecutor,
  input: { tenantId: string; eventName: string; actor: string; now?: Date },
): Promise<TriggerRecord> {
  const now = input.now ?? new Date();
  const current = await lockTriggerByName(trx, input.tenantId, input.eventName);
  await markTriggerDeleted(trx, current.trigger_id, now);
  await appendTriggerAudits(
    trx,
    input.tenantId,
    [
      triggerDeletedAudit({
        event_name: input.eventName,
        trigger_id: current.trigger_id,
        actor: input.actor,
      }),
    ],
    now,
  );
  return current;
}

/**
 * Pauses a trigger with a note; audited. Fires while paused are recorded in the ledger as `skipped` /
 * `paused`. Pausing a trigger the breaker paused makes it a person's pause (no probe will resume it).
 * Pausing a paused trigger changes nothing.
 */
export async function pauseTrigger(
  trx: QueryExecutor,
  input: { tenantId: string; eventName: string; actor: string; note?: string; now?: Date },
): Promise<{ trigger: TriggerRecord; changed: boolean }> {
  const now = input.now ?? new Date();
  const current = await lockTriggerByName(trx, input.tenantId, input.eventName);
  const { change, audit } = pauseByPerson(current, {
    event_name: input.eventName,
    actor: input.actor,
    ...(input.note !== undefined ? { note: input.note } : {}),
    now,
  });
  if (!change) return { trigger: current, changed: false };
  const trigger = await writeTriggerState(trx, current.trigger_id, change, now);
  if (audit) await appendTriggerAudits(trx, input.tenantId, [audit], now);
  return { trigger, changed: true };
}

/**
 * Resumes a paused trigger; audited. A person resuming also closes an open breaker (its window restarts).
 * Missed fires are not run unless `backfill`: then the caller gets the executions to enqueue — the fires
 * skipped while paused (up to `maxBackfill`, oldest first) turned into `pending` backfill runs.
 */
export async function resumeTrigger(
  trx: QueryExecutor,
  input: {
    tenantId: string;
    eventName: string;
    actor: string;
    note?: string;
    backfill?: boolean;
    maxBackfill: number;
    now?: Date;
  },
): Promise<{
  trigger: TriggerRecord;
  changed: boolean;
  backfill: Array<{ execution_id: string; scheduled_for: Date }>;
}> {
  const now = input.now ?? new Date();
  const current = await lockTriggerByName(trx, input.tenantId, input.eventName);
  const change = resumeByPerson(current, now);
  if (!change) return { trigger: current, changed: false, backfill: [] };
  const trigger = await writeTriggerState(trx, current.trigger_id, change, now);
  const backfill =
    input.backfill && current.paused_at
      ? await reopenPausedFires(trx, {
          triggerId: current.trigger_id,
          pausedAt: current.paused_at,
          limit: input.maxBackfill,
          now,
        })
      : [];
  const audit = triggerResumedAudit(current, {
    event_name: input.eventName,
    actor: input.actor,
    ...(input.note !== undefined ? { note: input.note } : {}),
    backfill: input.backfill ?? false,
    backfilled_runs: backfill.length,
    now,
  });
  await appendTriggerAudits(trx, input.tenantId, [audit], now);
  return { trigger, changed: true, backfill };
}
