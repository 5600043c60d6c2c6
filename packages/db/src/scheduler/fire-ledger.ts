/**
 * The ledger side of governing fires, in bulk (group commit: a burst of fires costs a handful of statements):
 * lock the rows that exist, read what governance needs, write the decisions, and record the fires a late job
 * hid. The decisions themselves come from `decideFire` in @warden/domain.
 */
import { sql } from 'kysely';
import type { FireDecision, LedgerSnapshot, PreviousRun } from '@warden/domain';
import type { CronExecutionRow } from './tables.js';
import type { QueryExecutor } from '../database.js';
import { cronExecutionId } from './execution-rows.js';

/**
 * The ledger rows that exist already for these execution ids (a duplicate delivery, or a manual run or
 * backfill whose row was written by whoever asked), locked for the rest of the transaction.
 */
export async function lockFireExecutions(
  trx: QueryExecutor,
  executionIds: readonly string[],
): Promise<Map<string, CronExecutionRow>> {
  if (executionIds.length === 0) return new Map();
  const rows = await trx
    .selectFrom('cron_executions')
    .selectAll()
    .where('execution_id', 'in', [...executionIds])
    .orderBy('execution_id')
    .forUpdate()
    .execute();
  return new Map(rows.map((row) => [row.execution_id, row]));
}

/** A new fire's ledger row, written once, already governed (group commit: one insert for all). */
export interface NewGovernedFire extends FireDecision {
  tenant_id: string;
  trigger_id: string;
  event_name: string;
  scheduled_for: Date;
  triggered_at: Date;
}

/**
 * Inserts the rows of new fires in their governed state. A row that exists meanwhile (unique trigger + fire
 * time) is left alone: the ids actually inserted come back, the others were someone else's.
 */
export async function insertGovernedFires(
  trx: QueryExecutor,
  fires: readonly NewGovernedFire[],
): Promise<Set<string>> {
  if (fires.length === 0) return new Set();
  const col = <K extends keyof NewGovernedFire>(key: K) => fires.map((f) => f[key]);
  const result = await sql<{ execution_id: string }>`
    insert into cron_executions (execution_id, tenant_id, trigger_id, event_name, scheduled_for, triggered_at, status, skip_reason, error,
                                 governance_checks, decision_mode, reserved_cost_usd, probe, buffered, next_attempt_at, started_at, completed_at, governed_at)
    select execution_id, tenant_id, trigger_id, event_name, scheduled_for, triggered_at, status, skip_reason, error,
           governance_checks::jsonb, decision_mode, reserved_cost_usd, probe, buffered, next_attempt_at, started_at, completed_at, governed_at
      from unnest(${col('execution_id')}::uuid[], ${col('tenant_id')}::text[], ${col('trigger_id')}::uuid[], ${col('event_name')}::text[],
                  ${col('scheduled_for')}::timestamptz[], ${col('triggered_at')}::timestamptz[], ${col('status')}::text[], ${col('skip_reason')}::text[],
                  ${col('error')}::text[], ${fires.map((f) => JSON.stringify(f.governance_checks))}::text[], ${col('decision_mode')}::text[],
                  ${col('reserved_cost_usd')}::numeric[], ${col('probe')}::boolean[], ${col('buffered')}::boolean[], ${col('next_attempt_at')}::timestamptz[],
                  ${col('started_at')}::timestamptz[], ${col('completed_at')}::timestamptz[], ${col('governed_at')}::timestamptz[])
           as f(execution_id, tenant_id, trigger_id, event_name, scheduled_for, triggered_at, status, skip_reason, error, governance_checks,
                decision_mode, reserved_cost_usd, probe, buffered, next_attempt_at, started_at, completed_at, governed_at)
    on conflict (trigger_id, scheduled_for) do nothing
    returning execution_id`.execute(trx);
  return new Set(result.rows.map((r) => r.execution_id));
}

/** A fire's ledger snapshot, and the run before it (the handler context's `previous_run`). */
export interface FireLedger extends LedgerSnapshot {
  previous_run: PreviousRun | null;
}

/**
 * What governance needs from the ledger for many fires (of distinct triggers), in one statement, by execution
 * id, with each fire's previous run. A fire's day is its day in the trigger's zone; the fire itself is left
 * out of every count.
 */
export async function ledgerSnapshots(
  trx: QueryExecutor,
  items: ReadonlyArray<{
    trigger_id: string;
    execution_id: string;
    scheduled_for: Date;
    day: { start: Date; end: Date };
    /** Only what the trigger's governance reads is looked up (a burst of plain triggers skips the rest). */
    needs: { last_success: boolean; runs_today: boolean; cost_today: boolean };
  }>,
): Promise<Map<string, FireLedger>> {
  const result = new Map<string, FireLedger>();
  if (items.length === 0) return result;
  const rows = await sql<{
    execution_id: string;
    last_success: Date | null;
    runs_today: string | null;
    cost_today: string | null;
    in_flight: string;
    buffered: string;
    average_cost: string | null;
    prev_id: string | null;
    prev_scheduled_for: Date | null;
    prev_status: string | null;
    prev_completed_at: Date | null;
  }>`
    select i.execution_id,
      case when i.need_success then (select max(scheduled_for) from cron_executions e where e.trigger_id = i.trigger_id
          and e.status in ('success','fallback') and e.execution_id <> i.execution_id) end as last_success,
      case when i.need_runs then (select count(*) from cron_executions e where e.trigger_id = i.trigger_id and e.scheduled_for >= i.day_start
          and e.scheduled_for < i.day_end and e.status <> 'skipped' and e.governed_at is not null and e.execution_id <> i.execution_id) end as runs_today,
      case when i.need_cost then (select coalesce(sum(coalesce(cost_usd, 0) + reserved_cost_usd), 0) from cron_executions e where e.trigger_id = i.trigger_id
          and e.scheduled_for >= i.day_start and e.scheduled_for < i.day_end and e.status <> 'skipped' and e.execution_id <> i.execution_id) end as cost_today,
      case when i.need_cost then (select avg(cost_usd) from (select cost_usd from cron_executions e where e.trigger_id = i.trigger_id
          and e.status in ('success','fallback','failed') and e.cost_usd is not null order by e.scheduled_for desc limit 10) recent) end as average_cost,
      f.in_flight, f.buffered,
      p.execution_id as prev_id, p.scheduled_for as prev_scheduled_for, p.status as prev_status, p.completed_at as prev_completed_at
    from unnest(${items.map((i) => i.trigger_id)}::uuid[], ${items.map((i) => i.execution_id)}::uuid[], ${items.map((i) => i.scheduled_for)}::timestamptz[],
                ${items.map((i) => i.day.start)}::timestamptz[], ${items.map((i) => i.day.end)}::timestamptz[],
                ${items.map((i) => i.needs.last_success)}::boolean[], ${items.map((i) => i.needs.runs_today)}::boolean[], ${items.map((i) => i.needs.cost_today)}::boolean[])
         as i(trigger_id, execution_id, scheduled_for, day_start, day_end, need_success, need_runs, need_cost)
    cross join lateral (select count(*) filter (where not e.buffered and e.governed_at is not null) as in_flight,
                               count(*) filter (where e.buffered and e.status = 'pending') as buffered
                          from cron_executions e
                         where e.trigger_id = i.trigger_id and e.status in ('pending','running') and e.execution_id <> i.execution_id) f
    left join lateral (select execution_id, scheduled_for, status, completed_at from cron_executions e
                        where e.trigger_id = i.trigger_id and e.status in ('success','failed','fallback') and e.scheduled_for < i.scheduled_for
                        order by e.scheduled_for desc limit 1) p on true`.execute(trx);
  for (const row of rows.rows) {
    result.set(row.execution_id, {
      last_success_scheduled_for: row.last_success,
      runs_today: Number(row.runs_today ?? 0),
      cost_today_usd: Number(row.cost_today ?? 0),
      in_flight: Number(row.in_flight),
      buffered: Number(row.buffered),
      average_cost_usd: row.average_cost === null ? null : Number(row.average_cost),
      previous_run: row.prev_id
        ? {
            execution_id: row.prev_id,
            scheduled_for: row.prev_scheduled_for!,
            status: row.prev_status!,
            completed_at: row.prev_completed_at,
          }
        : null,
    });
  }
  return result;
}

/** Writes many governance outcomes in one statement. */
export async function applyFireDecisions(
  trx: QueryExecutor,
  decisions: readonly FireDecision[],
): Promise<void> {
  if (decisions.length === 0) return;
  const col = <K extends keyof FireDecision>(key: K) => decisions.map((d) => d[key]);
  await sql`
    update cron_executions as e set
      status = d.status, skip_reason = d.skip_reason, error = d.error, governance_checks = d.governance_checks::jsonb,
      decision_mode = d.decision_mode, reserved_cost_usd = d.reserved_cost_usd, probe = d.probe, buffered = d.buffered,
      next_attempt_at = d.next_attempt_at, started_at = coalesce(e.started_at, d.started_at), completed_at = d.completed_at, governed_at = d.governed_at
    from unnest(${col('execution_id')}::uuid[], ${col('status')}::text[], ${col('skip_reason')}::text[], ${col('error')}::text[],
                ${decisions.map((d) => JSON.stringify(d.governance_checks))}::text[], ${col('decision_mode')}::text[], ${col('reserved_cost_usd')}::numeric[],
                ${col('probe')}::boolean[], ${col('buffered')}::boolean[], ${col('next_attempt_at')}::timestamptz[], ${col('started_at')}::timestamptz[],
                ${col('completed_at')}::timestamptz[], ${col('governed_at')}::timestamptz[])
         as d(execution_id, status, skip_reason, error, governance_checks, decision_mode, reserved_cost_usd, probe, buffered, next_attempt_at, started_at, completed_at, governed_at)
    where e.execution_id = d.execution_id`.execute(trx);
}

/**
 * Fires skipped while no scheduler ran (BullMQ collapses them into one late job), recorded so the ledger has
 * every fire.
 */
export async function insertMissedFires(
  trx: QueryExecutor,
  items: ReadonlyArray<{ tenant_id: string; trigger_id: string; event_name: string; scheduled_for: Date }>,
  now: Date,
  reason: string,
): Promise<number> {
  if (items.length === 0) return 0;
  const checks = JSON.stringify([{ check: 'catchup_window', passed: false, reason }]);
  const result = await sql<{ execution_id: string }>`
    insert into cron_executions (execution_id, tenant_id, trigger_id, event_name, scheduled_for, triggered_at, governed_at, completed_at, status, skip_reason, governance_checks)
    select id, tenant, trigger, name, at, ${now}::timestamptz, ${now}::timestamptz, ${now}::timestamptz, 'skipped', 'skipped_missed', ${checks}::jsonb
      from unnest(${items.map((i) => cronExecutionId(i.trigger_id, i.scheduled_for))}::uuid[], ${items.map((i) => i.tenant_id)}::text[],
                  ${items.map((i) => i.trigger_id)}::uuid[], ${items.map((i) => i.event_name)}::text[], ${items.map((i) => i.scheduled_for)}::timestamptz[])
           as m(id, tenant, trigger, name, at)
    on conflict (trigger_id, scheduled_for) do nothing
    returning execution_id`.execute(trx);
  return result.rows.length;
}
