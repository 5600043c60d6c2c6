import { sql } from 'kysely';
import {
  canonicalJson,
  checkWeightChange,
  ConflictError,
  encodeCursor,
  mergeTriggerPatch,
  NotFoundError,
  parseOrThrow,
  triggerAuditTaskId,
  TriggerDefinitionSchema,
  TriggerPatchSchema,
  type AuditLevel,
  type BreakerState,
  type Page,
  type Target,
  type TriggerDefinition,
  type TriggerView,
} from '@warden/domain';
import type { CronTriggerRow } from './tables.js';
import type { QueryExecutor } from '../database.js';
import { shadowConsistency } from './cron-migration.js';
import { appendAudits, type NewAudit } from '../core/audits.js';


/** A trigger as the scheduler works with it: its definition and its live state. */
export interface TriggerRecord {
  trigger_id: string;
  tenant_id: string;
  definition: TriggerDefinition;
  paused: boolean;
  pause_source: 'manual' | 'circuit_breaker' | null;
  pause_note: string | null;
  paused_at: Date | null;
  paused_by: string | null;
  breaker: BreakerState;
  /** The breaker's window counts runs fired after this. */
  breaker_reset_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const num = (value: string | null): number | null => (value === null ? null : Number(value));

/** Maps a row to the definition it stores (validated when it was written). */
export function toTriggerRecord(row: CronTriggerRow): TriggerRecord {
  const definition: TriggerDefinition = {
    event_name: row.event_name,
    expression: row.expression,
    timezone: row.timezone,
    description: row.description,
    focus: row.focus,
    payload: row.payload,
    agent: row.agent_target as Target | null,
    fallback: row.fallback_target as Target | null,
    fallback_strategy: row.fallback_strategy as TriggerDefinition['fallback_strategy'],
    migration_weight: row.migration_weight,
    mode: row.mode as TriggerDefinition['mode'],
    cooldown_seconds: row.cooldown_seconds,
    max_daily_runs: row.max_daily_runs,
    max_daily_cost_usd: num(row.max_daily_cost_usd),
    max_cost_per_run_usd: num(row.max_cost_per_run_usd),
    max_duration_ms: row.max_duration_ms,
    circuit_breaker: row.circuit_breaker as TriggerDefinition['circuit_breaker'],
    overlap_policy: row.overlap_policy as TriggerDefinition['overlap_policy'],
    catchup_window_seconds: row.catchup_window_seconds,
    jitter_ms: row.jitter_ms,
    retry_on_failure: row.retry_on_failure,
    max_retries: row.max_retries,
    retry_delay_seconds: row.retry_delay_seconds,
    priority: row.priority,
    tags: row.tags,
    enabled: row.enabled,
    migration: row.migration as TriggerDefinition['migration'],
  };
  return {
    trigger_id: row.trigger_id,
    tenant_id: row.tenant_id,
    definition,
    paused: row.paused,
    pause_source: row.pause_source,
    pause_note: row.pause_note,
    paused_at: row.paused_at,
    paused_by: row.paused_by,
    breaker: {
      state: row.breaker_state,
      opened_at: row.breaker_opened_at,
      probe_execution_id: row.breaker_probe_execution_id,
      reason: row.breaker_reason,
    },
    breaker_reset_at: row.breaker_reset_at,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

function redactTarget(target: Target | null): TriggerView['agent'] {
  if (!target) return null;
  if ('queue' in target) return { queue: target.queue };
  return {
    url: target.url,
    timeoutMs: target.timeoutMs,
    ...(target.headers
      ? { headers: Object.fromEntries(Object.keys(target.headers).map((name) => [name, '[redacted]'])) }
      : {}),
  };
}

/** The trigger as the API shows it (HTTP headers redacted). */
export function toTriggerView(record: TriggerRecord): TriggerView {
  const d = record.definition;
  return {
    trigger_id: record.trigger_id,
    tenant_id: record.tenant_id,
    ...d,
    agent: redactTarget(d.agent),
    fallback: redactTarget(d.fallback),
    paused: record.paused,
    pause:
      record.paused && record.pause_source && record.paused_at
        ? {
            source: record.pause_source,
            note: record.pause_note,
            paused_at: record.paused_at.toISOString(),
            paused_by: record.paused_by,
          }
        : null,
    breaker: {
      state: record.breaker.state,
      opened_at: record.breaker.opened_at?.toISOString() ?? null,
      reason: record.breaker.reason,
      probe_execution_id: record.breaker.probe_execution_id,
    },
    created_at: record.created_at.toISOString(),
    updated_at: record.updated_at.toISOString(),
  };
}

function definitionColumns(d: TriggerDefinition) {
  return {
    event_name: d.event_name,
    expression: d.expression,
    timezone: d.timezone,
    description: d.description,
    focus: d.focus === null ? null : JSON.stringify(d.focus),
    payload: JSON.stringify(d.payload),
    agent_target: d.agent === null ? null : JSON.stringify(d.agent),
    fallback_target: d.fallback === null ? null : JSON.stringify(d.fallback),
    fallback_strategy: d.fallback_strategy,
    migration_weight: d.migration_weight,
    mode: d.mode,
    cooldown_seconds: d.cooldown_seconds,
    max_daily_runs: d.max_daily_runs,
    max_daily_cost_usd: d.max_daily_cost_usd,
    max_cost_per_run_usd: d.max_cost_per_run_usd,
    max_duration_ms: d.max_duration_ms,
    circuit_breaker: JSON.stringify(d.circuit_breaker),
    overlap_policy: d.overlap_policy,
    catchup_window_seconds: d.catchup_window_seconds,
    jitter_ms: d.jitter_ms,
    retry_on_failure: d.retry_on_failure,
    max_retries: d.max_retries,
    retry_delay_seconds: d.retry_delay_seconds,
    priority: d.priority,
    tags: d.tags,
    enabled: d.enabled,
    migration: JSON.stringify(d.migration),
  };
}

function trailAudit(
  tenantId: string,
  eventName: string,
  event_type: string,
  level: AuditLevel,
  payload: Record<string, unknown>,
): NewAudit {
  return {
    tenant_id: tenantId,
    task_id: triggerAuditTaskId(eventName),
    event_type,
    level,
    decision_id: null,
    event_id: null,
    source_event_ts: null,
    payload,
  };
}

/** The tenant's live trigger named `eventName`. */
export async function findTrigger(
  db: QueryExecutor,
  tenantId: string,
  eventName: string,
): Promise<TriggerRecord | undefined> {
  const row = await db
    .selectFrom('cron_triggers')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('event_name', '=', eventName)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  return row ? toTriggerRecord(row) : undefined;
}

/** Like {@link findTrigger} but throws NotFoundError (404) for an unknown name or another tenant's trigger. */
export async function getTrigger(db: QueryExecutor, tenantId: string, eventName: string): Promise<TriggerRecord> {
  const record = await findTrigger(db, tenantId, eventName);
  if (!record) throw new NotFoundError(`trigger "${eventName}" not found`);
  return record;
}

/** Locks the tenant's trigger row until the transaction ends (every change to a trigger's state takes this lock first). */
async function lockTriggerByName(
  trx: QueryExecutor,
  tenantId: string,
  eventName: string,
): Promise<TriggerRecord> {
  const row = await trx
    .selectFrom('cron_triggers')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('event_name', '=', eventName)
    .where('deleted_at', 'is', null)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw new NotFoundError(`trigger "${eventName}" not found`);
  return toTriggerRecord(row);
}

/**
 * Locks a trigger by id; undefined when it does not exist or (unless `includeDeleted`, for runs that were in
 * flight when it was deleted) was deleted.
 */
export async function lockTrigger(
  trx: QueryExecutor,
  triggerId: string,
  options: { includeDeleted?: boolean } = {},
): Promise<TriggerRecord | undefined> {
  let query = trx.selectFrom('cron_triggers').selectAll().where('trigger_id', '=', triggerId);
  if (!options.includeDeleted) query = query.where('deleted_at', 'is', null);
  const row = await query.forUpdate().executeTakeFirst();
  return row ? toTriggerRecord(row) : undefined;
}

/** Locks many live triggers, in id order (no deadlocks between batches), by id. */
export async function lockTriggers(
  trx: QueryExecutor,
  triggerIds: readonly string[],
): Promise<Map<string, TriggerRecord>> {
  if (triggerIds.length === 0) return new Map();
  const rows = await trx
    .selectFrom('cron_triggers')
    .selectAll()
    .where('trigger_id', 'in', [...new Set(triggerIds)])
    .where('deleted_at', 'is', null)
    .orderBy('trigger_id')
    .forUpdate()
    .execute();
  return new Map(rows.map((row) => [row.trigger_id, toTriggerRecord(row)]));
}

export interface ListTriggersOptions {
  limit: number;
  /** Event name of the last item of the previous page. */
  after?: string;
  tag?: string;
  enabled?: boolean;
}

/** The tenant's triggers by name, keyset-paginated. */
export async function listTriggers(
  db: QueryExecutor,
  tenantId: string,
  options: ListTriggersOptions,
): Promise<Page<TriggerView>> {
  let query = db
    .selectFrom('cron_triggers')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('deleted_at', 'is', null)
    .orderBy('event_name')
    .limit(options.limit + 1);
  if (options.after !== undefined) query = query.where('event_name', '>', options.after);
  if (options.tag !== undefined) query = query.where(sql<boolean>`tags @> ${sql.val([options.tag])}::text[]`);
  if (options.enabled !== undefined) query = query.where('enabled', '=', options.enabled);
  const rows = await query.execute();
  const page = rows.slice(0, options.limit);
  return {
    items: page.map((row) => toTriggerView(toTriggerRecord(row))),
    next_cursor:
      rows.length > options.limit && page.length > 0
        ? encodeCursor({ after: page.at(-1)!.event_name })
        : null,
  };
}

export interface TriggerChange {
  trigger: TriggerRecord;
  created: boolean;
  /** False when the definition was already exactly this (an SDK re-registering on start). */
  changed: boolean;
  changed_fields: string[];
}

const DEFINITION_FIELDS = Object.keys(
  TriggerDefinitionSchema.parse({ event_name: 'x', expression: '* * * * *', agent: { queue: 'x' } }),
) as Array<keyof TriggerDefinition>;

/**
 * Creates or updates (by event name) a tenant's trigger in one transaction, audited. Raising the migration
 * weight of a trigger with a fallback needs proven shadow consistency (SPEC §3 cutover) unless `force`:
 * otherwise a ConflictError (409) says why. Weight and mode changes get their own audit rows.
 */
export async function registerTrigger(
  trx: QueryExecutor,
  input: { tenantId: string; definition: TriggerDefinition; actor: string; force?: boolean; now?: Date },
): Promise<TriggerChange> {
  const now = input.now ?? new Date();
  const d = input.definition;
  const existing = await trx
    .selectFrom('cron_triggers')
    .selectAll()
    .where('tenant_id', '=', input.tenantId)
    .where('event_name', '=', d.event_name)
    .where('deleted_at', 'is', null)
    .forUpdate()
    .executeTakeFirst();
  if (!existing) {
    const row = await trx
      .insertInto('cron_triggers')
      .values({ tenant_id: input.tenantId, ...definitionColumns(d), created_at: now, updated_at: now })
      .returningAll()
      .executeTakeFirstOrThrow();
    await appendAudits(
      trx,
      [
        trailAudit(input.tenantId, d.event_name, 'TRIGGER_REGISTERED', 'info', {
          by: input.actor,
          trigger_id: row.trigger_id,
          definition: auditableDefinition(d),
        }),
      ],
      now,
    );
    return { trigger: toTriggerRecord(row), created: true, changed: true, changed_fields: DEFINITION_FIELDS };
  }
  return applyDefinition(trx, toTriggerRecord(existing), d, input.actor, input.force ?? false, now);
}

/** Applies a partial update to a trigger (nested objects merge), validated as a whole; see {@link registerTrigger}. */
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
  const changed_fields = DEFINITION_FIELDS.filter(
    (field) => canonicalJson(before[field] ?? null) !== canonicalJson(next[field] ?? null),
  );
  if (changed_fields.length === 0)
    return { trigger: current, created: false, changed: false, changed_fields };

  const audits: NewAudit[] = [];
  if (next.migration_weight !== before.migration_weight) {
    const consistency = await shadowConsistency(trx, current.trigger_id, next.migration.consistency_window);
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
      trailAudit(
        current.tenant_id,
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
      trailAudit(current.tenant_id, next.event_name, 'MIGRATION_MODE_CHANGED', 'info', {
        by: actor,
        from: before.mode,
        to: next.mode,
      }),
    );
  audits.push(
    trailAudit(current.tenant_id, next.event_name, 'TRIGGER_UPDATED', 'info', {
      by: actor,
      changed_fields,
      before: pickFields(auditableDefinition(before), changed_fields),
      after: pickFields(auditableDefinition(next), changed_fields),
    }),
  );
  const row = await trx
    .updateTable('cron_triggers')
    .set({ ...definitionColumns(next), updated_at: now })
    .where('trigger_id', '=', current.trigger_id)
    .returningAll()
    .executeTakeFirstOrThrow();
  await appendAudits(trx, audits, now);
  return { trigger: toTriggerRecord(row), created: false, changed: true, changed_fields };
}

/** The definition without secrets (HTTP headers), for audit rows. */
function auditableDefinition(d: TriggerDefinition): Record<string, unknown> {
  const strip = (t: Target | null) =>
    t && 'url' in t && t.headers ? { ...t, headers: Object.keys(t.headers) } : t;
  return { ...d, agent: strip(d.agent), fallback: strip(d.fallback) };
}

function pickFields(value: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(fields.map((f) => [f, value[f]]));
}

/** Deletes a trigger (the ledger stays, the name is free again); audited. */
export async function deleteTrigger(
  trx: QueryExecutor,
  input: { tenantId: string; eventName: string; actor: string; now?: Date },
): Promise<TriggerRecord> {
  const now = input.now ?? new Date();
  const current = await lockTriggerByName(trx, input.tenantId, input.eventName);
  await trx
    .updateTable('cron_triggers')
    .set({ deleted_at: now, updated_at: now })
    .where('trigger_id', '=', current.trigger_id)
    .execute();
  await appendAudits(
    trx,
    [
      trailAudit(input.tenantId, input.eventName, 'TRIGGER_DELETED', 'warn', {
        by: input.actor,
        trigger_id: current.trigger_id,
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
  if (current.paused && current.pause_source === 'manual') return { trigger: current, changed: false };
  const row = await trx
    .updateTable('cron_triggers')
    .set({
      paused: true,
      pause_source: 'manual',
      pause_note: input.note ?? null,
      paused_at: current.paused_at ?? now,
      paused_by: input.actor,
      updated_at: now,
    })
    .where('trigger_id', '=', current.trigger_id)
    .returningAll()
    .executeTakeFirstOrThrow();
  await appendAudits(
    trx,
    [
      trailAudit(input.tenantId, input.eventName, 'TRIGGER_PAUSED', 'warn', {
        by: input.actor,
        note: input.note ?? null,
        previous_source: current.pause_source,
      }),
    ],
    now,
  );
  return { trigger: toTriggerRecord(row), changed: true };
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
  if (!current.paused) return { trigger: current, changed: false, backfill: [] };
  const breakerWasOpen = current.breaker.state !== 'closed';
  const row = await trx
    .updateTable('cron_triggers')
    .set({
      paused: false,
      pause_source: null,
      pause_note: null,
      paused_at: null,
      paused_by: null,
      ...(breakerWasOpen
        ? {
            breaker_state: 'closed' as const,
            breaker_opened_at: null,
            breaker_probe_execution_id: null,
            breaker_reason: null,
            breaker_reset_at: now,
          }
        : {}),
      updated_at: now,
    })
    .where('trigger_id', '=', current.trigger_id)
    .returningAll()
    .executeTakeFirstOrThrow();

  let backfill: Array<{ execution_id: string; scheduled_for: Date }> = [];
  if (input.backfill && current.paused_at) {
    // The ledger recorded each fire skipped while paused; a backfill turns those rows into runs.
    const result = await sql<{ execution_id: string; scheduled_for: Date }>`
      update cron_executions set status = 'pending', backfill = true, governed_at = null, skip_reason = null, completed_at = null,
             governance_checks = '[]'::jsonb, error = null, triggered_at = ${now}
       where execution_id in (
             select execution_id from cron_executions
              where trigger_id = ${current.trigger_id} and scheduled_for >= ${current.paused_at}
                and status = 'skipped' and skip_reason = 'paused'
              order by scheduled_for limit ${input.maxBackfill})
      returning execution_id, scheduled_for`.execute(trx);
    backfill = result.rows.sort((a, b) => a.scheduled_for.getTime() - b.scheduled_for.getTime());
  }
  await appendAudits(
    trx,
    [
      trailAudit(input.tenantId, input.eventName, 'TRIGGER_RESUMED', 'info', {
        by: input.actor,
        note: input.note ?? null,
        paused_by: current.paused_by,
        paused_source: current.pause_source,
        paused_for_seconds: current.paused_at
          ? Math.round((now.getTime() - current.paused_at.getTime()) / 1000)
          : null,
        backfill: input.backfill ?? false,
        backfilled_runs: backfill.length,
        closed_breaker: breakerWasOpen,
      }),
    ],
    now,
  );
  return { trigger: toTriggerRecord(row), changed: true, backfill };
}

/** What a replica needs to keep one job scheduler per trigger: every live trigger (all tenants). */
export async function listSchedulableTriggers(
  db: QueryExecutor,
): Promise<
  Array<{
    trigger_id: string;
    tenant_id: string;
    expression: string;
    timezone: string;
    priority: number;
    enabled: boolean;
  }>
> {
  return db
    .selectFrom('cron_triggers')
    .select(['trigger_id', 'tenant_id', 'expression', 'timezone', 'priority', 'enabled'])
    .where('deleted_at', 'is', null)
    .execute();
}

/** One trigger's schedule fields (deleted ones too: the reconciler removes their job scheduler). */
export async function findTriggerSchedule(db: QueryExecutor, triggerId: string) {
  return db
    .selectFrom('cron_triggers')
    .select(['trigger_id', 'tenant_id', 'expression', 'timezone', 'priority', 'enabled', 'deleted_at'])
    .where('trigger_id', '=', triggerId)
    .executeTakeFirst();
}

/**
 * Writes a breaker transition decided by the scheduler, in the caller's transaction: opening pauses the
 * trigger with a note; closing resumes it if the breaker had paused it and restarts the window. Audited.
 */
export async function applyBreakerTransition(
  trx: QueryExecutor,
  input: {
    trigger: TriggerRecord;
    next: BreakerState;
    transition: 'opened' | 'reopened' | 'closed' | 'probing';
    failure_rate: number;
    runs: number;
    now: Date;
  },
): Promise<void> {
  const { trigger, next, now } = input;
  const opening = input.transition === 'opened' || input.transition === 'reopened';
  const closing = input.transition === 'closed';
  await trx
    .updateTable('cron_triggers')
    .set({
      breaker_state: next.state,
      breaker_opened_at: next.opened_at,
      breaker_probe_execution_id: next.probe_execution_id,
      breaker_reason: next.reason,
      ...(closing ? { breaker_reset_at: now } : {}),
      ...(opening && !trigger.paused
        ? {
            paused: true,
            pause_source: 'circuit_breaker' as const,
            pause_note: `circuit breaker open: ${next.reason ?? ''}`,
            paused_at: now,
            paused_by: 'scheduler',
          }
        : {}),
      ...(closing && trigger.paused && trigger.pause_source === 'circuit_breaker'
        ? { paused: false, pause_source: null, pause_note: null, paused_at: null, paused_by: null }
        : {}),
      updated_at: now,
    })
    .where('trigger_id', '=', trigger.trigger_id)
    .execute();
  if (input.transition === 'probing') return;
  const type = opening ? 'CIRCUIT_BREAKER_OPENED' : 'CIRCUIT_BREAKER_CLOSED';
  await appendAudits(
    trx,
    [
      trailAudit(trigger.tenant_id, trigger.definition.event_name, type, opening ? 'error' : 'info', {
        by: 'scheduler',
        transition: input.transition,
        reason: next.reason ?? (closing ? 'half-open probe succeeded' : null),
        failure_rate: input.failure_rate,
        window_runs: input.runs,
        paused_trigger: opening && !trigger.paused,
        resumed_trigger: closing && trigger.paused && trigger.pause_source === 'circuit_breaker',
      }),
    ],
    now,
  );
}

/** Triggers whose breaker is not closed (the `cron_circuit_breaker_open` gauge, health). */
export async function listOpenBreakers(
  db: QueryExecutor,
): Promise<Array<{ tenant_id: string; event_name: string; breaker_state: string }>> {
  return db
    .selectFrom('cron_triggers')
    .select(['tenant_id', 'event_name', 'breaker_state'])
    .where('deleted_at', 'is', null)
    .where('breaker_state', '<>', 'closed')
    .execute();
}
