/**
 * The `cron_triggers` repository: finding, locking and listing triggers, and writing a definition, a state
 * change or a deletion. Every change to a trigger takes its row lock first (`lockTrigger*`), so the rules
 * deciding the change (in @warden/domain) see the state it is written over.
 */
import { sql } from 'kysely';
import {
  encodeCursor,
  NotFoundError,
  type Page,
  type TriggerDefinition,
  type TriggerMode,
  type TriggerStateChange,
  type TriggerView,
} from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import {
  definitionColumns,
  stateColumns,
  toTriggerRecord,
  toTriggerView,
  type TriggerRecord,
} from './trigger-rows.js';

function liveTriggerByName(db: QueryExecutor, tenantId: string, eventName: string) {
  return db
    .selectFrom('cron_triggers')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('event_name', '=', eventName)
    .where('deleted_at', 'is', null);
}

/** The tenant's live trigger named `eventName`. */
export async function findTrigger(
  db: QueryExecutor,
  tenantId: string,
  eventName: string,
): Promise<TriggerRecord | undefined> {
  const row = await liveTriggerByName(db, tenantId, eventName).executeTakeFirst();
  return row ? toTriggerRecord(row) : undefined;
}

/**
 * Like {@link findTrigger} but throws NotFoundError (404) for an unknown name or another tenant's trigger.
 */
export async function getTrigger(
  db: QueryExecutor,
  tenantId: string,
  eventName: string,
): Promise<TriggerRecord> {
  const record = await findTrigger(db, tenantId, eventName);
  if (!record) throw new NotFoundError(`trigger "${eventName}" not found`);
  return record;
}

/**
 * Locks the tenant's live trigger named `eventName` until the transaction ends; undefined when there is none.
 */
export async function lockTriggerByNameIfExists(
  trx: QueryExecutor,
  tenantId: string,
  eventName: string,
): Promise<TriggerRecord | undefined> {
  const row = await liveTriggerByName(trx, tenantId, eventName).forUpdate().executeTakeFirst();
  return row ? toTriggerRecord(row) : undefined;
}

/** {@link lockTriggerByNameIfExists}, throwing NotFoundError (404) when there is none. */
export async function lockTriggerByName(
  trx: QueryExecutor,
  tenantId: string,
  eventName: string,
): Promise<TriggerRecord> {
  const record = await lockTriggerByNameIfExists(trx, tenantId, eventName);
  if (!record) throw new NotFoundError(`trigger "${eventName}" not found`);
  return record;
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

/** What the job scheduler of a trigger is built from. */
const SCHEDULE_COLUMNS = [
  'trigger_id',
  'tenant_id',
  'expression',
  'timezone',
  'priority',
  'enabled',
] as const;

/** What a replica needs to keep one job scheduler per trigger: every live trigger (all tenants). */
export async function listSchedulableTriggers(db: QueryExecutor) {
  return db.selectFrom('cron_triggers').select(SCHEDULE_COLUMNS).where('deleted_at', 'is', null).execute();
}

/** One trigger's schedule fields (deleted ones too: the reconciler removes their job scheduler). */
export async function findTriggerSchedule(db: QueryExecutor, triggerId: string) {
  return db
    .selectFrom('cron_triggers')
    .select([...SCHEDULE_COLUMNS, 'deleted_at'])
    .where('trigger_id', '=', triggerId)
    .executeTakeFirst();
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

/** Writes a new trigger. */
export async function insertTrigger(
  trx: QueryExecutor,
  input: { tenantId: string; definition: TriggerDefinition; now: Date },
): Promise<TriggerRecord> {
  const row = await trx
    .insertInto('cron_triggers')
    .values({
      tenant_id: input.tenantId,
      ...definitionColumns(input.definition),
      created_at: input.now,
      updated_at: input.now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toTriggerRecord(row);
}

/**
 * Replaces a trigger's definition (its live state stays). `restartMigrationWindow` makes the migration's
 * evidence count from `now` (the trigger enters shadow). @defaultValue `false`
 */
export async function writeTriggerDefinition(
  trx: QueryExecutor,
  triggerId: string,
  definition: TriggerDefinition,
  now: Date,
  options: { restartMigrationWindow?: boolean } = {},
): Promise<TriggerRecord> {
  const row = await trx
    .updateTable('cron_triggers')
    .set({
      ...definitionColumns(definition),
      ...(options.restartMigrationWindow ? { migration_window_started_at: now } : {}),
      updated_at: now,
    })
    .where('trigger_id', '=', triggerId)
    .returningAll()
    .executeTakeFirstOrThrow();
  return toTriggerRecord(row);
}

/** Writes a change of a trigger's pause or breaker (the fields it leaves out keep their values). */
export async function writeTriggerState(
  trx: QueryExecutor,
  triggerId: string,
  change: TriggerStateChange,
  now: Date,
): Promise<TriggerRecord> {
  const row = await trx
    .updateTable('cron_triggers')
    .set({ ...stateColumns(change), updated_at: now })
    .where('trigger_id', '=', triggerId)
    .returningAll()
    .executeTakeFirstOrThrow();
  return toTriggerRecord(row);
}

/**
 * Sets a trigger's migration weight and mode (a rollback), leaving the rest of its definition; the migration's
 * evidence restarts from `now`, so a later shadow is judged on fresh comparisons only.
 */
export async function writeMigrationSettings(
  trx: QueryExecutor,
  triggerId: string,
  settings: { migration_weight: number; mode: TriggerMode },
  now: Date,
): Promise<void> {
  await trx
    .updateTable('cron_triggers')
    .set({
      migration_weight: settings.migration_weight,
      mode: settings.mode,
      migration_window_started_at: now,
      updated_at: now,
    })
    .where('trigger_id', '=', triggerId)
    .execute();
}

/** Marks a trigger deleted: its ledger stays, and its name is free again. */
export async function markTriggerDeleted(trx: QueryExecutor, triggerId: string, now: Date): Promise<void> {
  await trx
    .updateTable('cron_triggers')
    .set({ deleted_at: now, updated_at: now })
    .where('trigger_id', '=', triggerId)
    .execute();
}

/** Every live trigger of a tenant with its definition, by name: what `warden triggers apply` plans against. */
export async function listTenantTriggers(db: QueryExecutor, tenantId: string): Promise<TriggerRecord[]> {
  const rows = await db
    .selectFrom('cron_triggers')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('deleted_at', 'is', null)
    .orderBy('event_name')
    .execute();
  return rows.map(toTriggerRecord);
}
