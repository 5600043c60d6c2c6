import { sql, type Updateable } from 'kysely';
import {
  deterministicId,
  encodeCursor,
  triggerAuditTaskId,
  type ExecutionStatus,
  type ExecutionView,
  type GovernanceCheck,
  type HandlerRole,
  type LedgerSnapshot,
  type Page,
  type SkipReason,
} from '@warden/domain';
import type { CronAttemptRow, CronExecutionRow, CronExecutionsTable } from './tables.js';
import type { QueryExecutor } from '../database.js';
import { appendAudits } from '../core/audits.js';


/** The execution id of a fire: derived from the trigger and the fire time, so every delivery computes the same one. */
export function cronExecutionId(triggerId: string, scheduledFor: Date): string {
  return deterministicId('cron-execution', triggerId, String(scheduledFor.getTime()));
}

/** The id of one handler call: derived, so a re-dispatch of the same call is the same BullMQ job. */
export function cronAttemptId(executionId: string, attempt: number, role: HandlerRole): string {
  return deterministicId('cron-attempt', executionId, String(attempt), role);
}

const num = (value: string | null): number | null => (value === null ? null : Number(value));

/** A ledger row as the API shows it. */
export function toExecutionView(
  row: CronExecutionRow,
  options: { includeOutput?: boolean } = {},
): ExecutionView {
  return {
    execution_id: row.execution_id,
    event_name: row.event_name,
    scheduled_for: row.scheduled_for.toISOString(),
    triggered_at: row.triggered_at.toISOString(),
    started_at: row.started_at?.toISOString() ?? null,
    completed_at: row.completed_at?.toISOString() ?? null,
    duration_ms: row.duration_ms,
    status: row.status as ExecutionStatus,
    decision_mode: row.decision_mode as ExecutionView['decision_mode'],
    manual: row.manual,
    backfill: row.backfill,
    agent_run_id: row.agent_run_id,
    llm_calls: row.llm_calls,
    cost_usd: num(row.cost_usd),
    governance_checks: row.governance_checks as GovernanceCheck[],
    skip_reason: row.skip_reason as SkipReason | null,
    error: row.error,
    retry_count: row.retry_count,
    params: row.params,
    ...(options.includeOutput === false ? {} : { output: row.output ?? null }),
    comparison: row.comparison,
  };
}

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
  previous_run: {
    execution_id: string;
    scheduled_for: Date;
    status: string;
    completed_at: Date | null;
  } | null;
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

/** What governance decided for a fire, written back to its row. */
export interface FireDecision {
  execution_id: string;
  status: 'pending' | 'running' | 'skipped';
  skip_reason: string | null;
  error: string | null;
  governance_checks: unknown[];
  decision_mode: string | null;
  reserved_cost_usd: number;
  probe: boolean;
  buffered: boolean;
  next_attempt_at: Date | null;
  started_at: Date | null;
  completed_at: Date | null;
  governed_at: Date;
}

/** Writes many governance outcomes in one statement. */
export async function applyFireDecisions(trx: QueryExecutor, decisions: readonly FireDecision[]): Promise<void> {
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

/** Fires skipped while no scheduler ran (BullMQ collapses them into one late job), recorded so the ledger has every fire. */
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

/** Locks an execution row. */
export async function lockExecution(
  trx: QueryExecutor,
  executionId: string,
): Promise<CronExecutionRow | undefined> {
  return trx
    .selectFrom('cron_executions')
    .selectAll()
    .where('execution_id', '=', executionId)
    .forUpdate()
    .executeTakeFirst();
}

export async function findExecution(
  db: QueryExecutor,
  executionId: string,
): Promise<CronExecutionRow | undefined> {
  return db
    .selectFrom('cron_executions')
    .selectAll()
    .where('execution_id', '=', executionId)
    .executeTakeFirst();
}

export async function updateExecution(
  trx: QueryExecutor,
  executionId: string,
  values: Updateable<CronExecutionsTable>,
): Promise<CronExecutionRow> {
  return trx
    .updateTable('cron_executions')
    .set(values)
    .where('execution_id', '=', executionId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** The latest finished run before `before` (the handler context's `previous_run`). */
export async function previousRun(
  trx: QueryExecutor,
  triggerId: string,
  before: Date,
): Promise<{ execution_id: string; scheduled_for: Date; status: string; completed_at: Date | null } | null> {
  const row = await trx
    .selectFrom('cron_executions')
    .select(['execution_id', 'scheduled_for', 'status', 'completed_at'])
    .where('trigger_id', '=', triggerId)
    .where('status', 'in', ['success', 'failed', 'fallback'])
    .where('scheduled_for', '<', before)
    .orderBy('scheduled_for', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ?? null;
}

/** Cost and LLM calls reported by every handler call of a run (all tries, both roles). */
export async function attemptTotals(
  trx: QueryExecutor,
  executionId: string,
): Promise<{ cost_usd: number | null; llm_calls: number }> {
  const row = await sql<{ cost: string | null; calls: string | null }>`
    select sum((result ->> 'cost_usd')::numeric) as cost, sum((result ->> 'llm_calls')::int) as calls
      from cron_execution_attempts where execution_id = ${executionId}`.execute(trx);
  const r = row.rows[0];
  return { cost_usd: r?.cost == null ? null : Number(r.cost), llm_calls: Number(r?.calls ?? 0) };
}

export interface NewAttempt {
  attempt_id: string;
  execution_id: string;
  tenant_id: string;
  trigger_id: string;
  role: HandlerRole;
  try: number;
  target_kind: 'queue' | 'http';
  target: string;
  started_at: Date;
  deadline_at: Date;
}

/** Records handler calls about to be made; a call already recorded (a re-run of the same step) is kept as it is. */
export async function insertAttempts(trx: QueryExecutor, attempts: readonly NewAttempt[]): Promise<void> {
  if (attempts.length === 0) return;
  await trx
    .insertInto('cron_execution_attempts')
    .values(attempts.map((a) => ({ ...a, status: 'running' as const })))
    .onConflict((oc) => oc.columns(['execution_id', 'try', 'role']).doNothing())
    .execute();
}

export async function attemptsOfTry(
  trx: QueryExecutor,
  executionId: string,
  attempt: number,
): Promise<CronAttemptRow[]> {
  return trx
    .selectFrom('cron_execution_attempts')
    .selectAll()
    .where('execution_id', '=', executionId)
    .where('try', '=', attempt)
    .orderBy('role')
    .execute();
}

/**
 * Records how a handler call ended — only if it is still running: a late or repeated report (the call timed
 * out meanwhile, or a stalled worker ran it twice) changes nothing. Returns the updated row or undefined.
 */
export async function finishAttempt(
  trx: QueryExecutor,
  input: {
    attempt_id: string;
    status: 'success' | 'failed' | 'timeout';
    result?: Record<string, unknown> | null;
    error_kind?: string | null;
    error?: string | null;
    now: Date;
  },
): Promise<CronAttemptRow | undefined> {
  return trx
    .updateTable('cron_execution_attempts')
    .set({
      status: input.status,
      completed_at: input.now,
      duration_ms: sql<number>`greatest(0, (extract(epoch from ${input.now}::timestamptz - started_at) * 1000)::int)`,
      result: input.result ? JSON.stringify(input.result) : null,
      error_kind: input.error_kind ?? null,
      error: input.error ?? null,
    })
    .where('attempt_id', '=', input.attempt_id)
    .where('status', '=', 'running')
    .returningAll()
    .executeTakeFirst();
}

/** Final statuses of the trigger's latest runs fired after `since`, newest first (the breaker's window). */
export async function recentRunStatuses(
  trx: QueryExecutor,
  triggerId: string,
  since: Date | null,
  limit: number,
): Promise<ExecutionStatus[]> {
  let query = trx
    .selectFrom('cron_executions')
    .select('status')
    .where('trigger_id', '=', triggerId)
    .where('status', 'in', ['success', 'failed', 'fallback'])
    .orderBy('scheduled_for', 'desc')
    .limit(limit);
  if (since) query = query.where('scheduled_for', '>=', since);
  return (await query.execute()).map((r) => r.status as ExecutionStatus);
}

/** The run waiting in the trigger's `buffer_one` slot. */
export async function bufferedExecution(trx: QueryExecutor, triggerId: string): Promise<string | undefined> {
  const row = await trx
    .selectFrom('cron_executions')
    .select('execution_id')
    .where('trigger_id', '=', triggerId)
    .where('status', '=', 'pending')
    .where('buffered', '=', true)
    .orderBy('scheduled_for')
    .limit(1)
    .executeTakeFirst();
  return row?.execution_id;
}

/** Runs of the trigger in flight other than `executionId` (pending or running, not buffered). */
export async function inFlightCount(trx: QueryExecutor, triggerId: string, executionId: string): Promise<number> {
  const row = await trx
    .selectFrom('cron_executions')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('trigger_id', '=', triggerId)
    .where('status', 'in', ['pending', 'running'])
    .where('buffered', '=', false)
    .where('governed_at', 'is not', null)
    .where('execution_id', '<>', executionId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export interface HistoryOptions {
  limit: number;
  /** Keyset position: the last item of the previous page. */
  before?: { scheduled_for: string; execution_id: string };
  status?: ExecutionStatus;
}

/** A trigger's executions, newest first, keyset-paginated on (scheduled_for, execution_id). */
export async function listTriggerExecutions(
  db: QueryExecutor,
  tenantId: string,
  triggerId: string,
  options: HistoryOptions,
): Promise<Page<ExecutionView>> {
  let query = db
    .selectFrom('cron_executions')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('trigger_id', '=', triggerId)
    .orderBy('scheduled_for', 'desc')
    .orderBy('execution_id', 'desc')
    .limit(options.limit + 1);
  if (options.status) query = query.where('status', '=', options.status);
  if (options.before) {
    const { scheduled_for, execution_id } = options.before;
    query = query.where(
      sql<boolean>`(scheduled_for, execution_id) < (${new Date(scheduled_for)}::timestamptz, ${execution_id}::uuid)`,
    );
  }
  const rows = await query.execute();
  const page = rows.slice(0, options.limit);
  const last = page.at(-1);
  return {
    items: page.map((row) => toExecutionView(row)),
    next_cursor:
      rows.length > options.limit && last
        ? encodeCursor({ s: last.scheduled_for.toISOString(), id: last.execution_id })
        : null,
  };
}

/**
 * Records a trigger-now request (SPEC §3 management): a `pending` manual row, governed by whichever scheduler
 * takes its fire job. With a `request_id`, asking twice returns the first run (safe client retries).
 */
export async function requestManualRun(
  trx: QueryExecutor,
  input: {
    tenant_id: string;
    trigger_id: string;
    event_name: string;
    params: Record<string, unknown>;
    override_overlap: boolean;
    request_id?: string;
    actor: string;
    now?: Date;
  },
): Promise<{ execution_id: string; scheduled_for: Date; created: boolean }> {
  const now = input.now ?? new Date();
  if (input.request_id !== undefined) {
    const existing = await trx
      .selectFrom('cron_executions')
      .select(['execution_id', 'scheduled_for'])
      .where('trigger_id', '=', input.trigger_id)
      .where('request_id', '=', input.request_id)
      .executeTakeFirst();
    if (existing) return { ...existing, created: false };
  }
  // The fire time is the request time; two requests in the same millisecond take the next free one.
  for (let offset = 0; ; offset++) {
    const scheduled_for = new Date(now.getTime() + offset);
    const execution_id = cronExecutionId(input.trigger_id, scheduled_for);
    const row = await trx
      .insertInto('cron_executions')
      .values({
        execution_id,
        tenant_id: input.tenant_id,
        trigger_id: input.trigger_id,
        event_name: input.event_name,
        scheduled_for,
        triggered_at: now,
        status: 'pending',
        manual: true,
        override_overlap: input.override_overlap,
        params: JSON.stringify(input.params),
        request_id: input.request_id ?? null,
        requested_by: input.actor,
      })
      .onConflict((oc) => oc.doNothing())
      .returning(['execution_id', 'scheduled_for'])
      .executeTakeFirst();
    if (row) {
      await appendAudits(
        trx,
        [
          {
            tenant_id: input.tenant_id,
            task_id: triggerAuditTaskId(input.event_name),
            event_type: 'TRIGGER_RUN_REQUESTED',
            level: 'info',
            decision_id: null,
            event_id: null,
            source_event_ts: null,
            payload: {
              by: input.actor,
              execution_id,
              params: input.params,
              override_overlap: input.override_overlap,
            },
          },
        ],
        now,
      );
      return { ...row, created: true };
    }
    if (offset >= 1000) throw new Error('could not find a free fire time for the manual run');
  }
}

/** Handler calls past their deadline by `graceMs` and still running (their report or deadline job was lost). */
export async function overdueAttempts(
  db: QueryExecutor,
  now: Date,
  graceMs: number,
  limit: number,
): Promise<Array<{ attempt_id: string; execution_id: string }>> {
  return db
    .selectFrom('cron_execution_attempts')
    .select(['attempt_id', 'execution_id'])
    .where('status', '=', 'running')
    .where('deadline_at', '<', new Date(now.getTime() - graceMs))
    .orderBy('deadline_at')
    .limit(limit)
    .execute();
}

/**
 * Executions that should have moved on by now: governed runs due (a retry, a jittered start, a buffered run
 * whose turn came) whose job was lost, and rows never governed (a manual run or backfill whose fire job was lost).
 */
export async function stalledExecutions(
  db: QueryExecutor,
  now: Date,
  graceMs: number,
  limit: number,
): Promise<
  Array<{
    execution_id: string;
    tenant_id: string;
    trigger_id: string;
    scheduled_for: Date;
    governed: boolean;
  }>
> {
  const cutoff = new Date(now.getTime() - graceMs);
  const rows = await sql<{
    execution_id: string;
    tenant_id: string;
    trigger_id: string;
    scheduled_for: Date;
    governed: boolean;
  }>`
    (select execution_id, tenant_id, trigger_id, scheduled_for, true as governed from cron_executions
      where status = 'pending' and governed_at is not null and not buffered and next_attempt_at < ${cutoff}
      order by next_attempt_at limit ${limit})
    union all
    (select execution_id, tenant_id, trigger_id, scheduled_for, false as governed from cron_executions
      where status = 'pending' and governed_at is null and triggered_at < ${cutoff}
      order by triggered_at limit ${limit})
    union all
    (select b.execution_id, b.tenant_id, b.trigger_id, b.scheduled_for, true as governed from cron_executions b
      where b.status = 'pending' and b.buffered and b.governed_at < ${cutoff}
        and not exists (select 1 from cron_executions o where o.trigger_id = b.trigger_id and o.status in ('pending','running')
                         and not o.buffered and o.governed_at is not null)
      limit ${limit})`.execute(db);
  return rows.rows;
}

/** Runs in flight now, all tenants (the `cron_active_executions` gauge). */
export async function countActiveExecutions(db: QueryExecutor): Promise<number> {
  const row = await db
    .selectFrom('cron_executions')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('status', '=', 'running')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export interface TriggerWindowStats {
  by_status: Partial<Record<ExecutionStatus, number>>;
  skipped_by_reason: Partial<Record<SkipReason, number>>;
  average_duration_ms: number | null;
  cost_usd: number;
}

/** Counts by status and skip reason, mean duration and cost, over runs fired since `since`. */
export async function triggerWindowStats(
  db: QueryExecutor,
  triggerId: string,
  since: Date,
): Promise<TriggerWindowStats> {
  const rows = await db
    .selectFrom('cron_executions')
    .select((eb) => [
      'status',
      'skip_reason',
      eb.fn.countAll<string>().as('n'),
      sql<string | null>`avg(duration_ms) filter (where status in ('success','failed','fallback'))`.as(
        'avg_duration',
      ),
      sql<string | null>`sum(cost_usd)`.as('cost'),
    ])
    .where('trigger_id', '=', triggerId)
    .where('scheduled_for', '>=', since)
    .groupBy(['status', 'skip_reason'])
    .execute();
  const stats: TriggerWindowStats = {
    by_status: {},
    skipped_by_reason: {},
    average_duration_ms: null,
    cost_usd: 0,
  };
  let durationSum = 0;
  let durationRuns = 0;
  for (const row of rows) {
    const status = row.status as ExecutionStatus;
    const n = Number(row.n);
    stats.by_status[status] = (stats.by_status[status] ?? 0) + n;
    if (status === 'skipped' && row.skip_reason)
      stats.skipped_by_reason[row.skip_reason as SkipReason] =
        (stats.skipped_by_reason[row.skip_reason as SkipReason] ?? 0) + n;
    if (row.avg_duration !== null) {
      durationSum += Number(row.avg_duration) * n;
      durationRuns += n;
    }
    stats.cost_usd += Number(row.cost ?? 0);
  }
  stats.average_duration_ms = durationRuns === 0 ? null : Math.round(durationSum / durationRuns);
  return stats;
}

/** The trigger's latest executions, newest first. */
export async function latestExecutions(
  db: QueryExecutor,
  triggerId: string,
  limit: number,
): Promise<ExecutionView[]> {
  const rows = await db
    .selectFrom('cron_executions')
    .selectAll()
    .where('trigger_id', '=', triggerId)
    .orderBy('scheduled_for', 'desc')
    .limit(limit)
    .execute();
  return rows.map((row) => toExecutionView(row, { includeOutput: false }));
}

/** The trigger's audit trail (pauses, resumes, weight changes, breaker transitions), newest first. */
export async function triggerEvents(db: QueryExecutor, tenantId: string, eventName: string, limit: number) {
  const rows = await db
    .selectFrom('task_audits')
    .select(['event_type', 'level', 'payload', 'created_at'])
    .where('tenant_id', '=', tenantId)
    .where('task_id', '=', triggerAuditTaskId(eventName))
    .orderBy('audit_id', 'desc')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    event_type: r.event_type,
    level: r.level,
    payload: r.payload,
    created_at: r.created_at.toISOString(),
  }));
}
