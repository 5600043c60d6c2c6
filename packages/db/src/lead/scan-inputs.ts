import { sql } from 'kysely';
import {
  AUDIT_OF_DECISION,
  percentileExceeds,
  sliceWindow,
  type DecisionType,
  type LeadRulesFile,
  type LeadScanInputs,
  type LeadScanWindow,
  type Severity,
} from '@warden/domain';
import type { Db } from '../core/connection.js';
import type { QueryExecutor } from '../database.js';

/**
 * Reads what the lead rules need from `task_audits`, counting and grouping in SQL so that the scanning
 * process holds only counts and a few candidate rows however many decisions the window has.
 *
 * A decision's time is the time of the event it decided (`source_event_ts`): a window holds what happened in
 * it, and decision lag is measured from it. Two indexes of migration 0003 carry the reads: every decision
 * (narrow: an index-only count of the window, slice by slice), and the few "notable" ones the rules look
 * into (anything but a plain ALLOW, and any decision that carries findings), copied once into a temporary
 * table that every rule query then reads.
 */
export interface ReadLeadScanInputsOptions {
  tenantId: string;
  window: LeadScanWindow;
  rules: LeadRulesFile;
  /** Length of the slices the window is counted in, for progress. @defaultValue one day */
  sliceMs?: number;
  /** Called after each slice with the decisions counted so far (to report progress, keep a heartbeat). */
  onSlice?: (done: number, total: number, decisions: number) => Promise<void> | void;
  /** Aborts between statements (the scan lost its lock). */
  signal?: AbortSignal;
  /** Cancels any one statement that runs longer. @defaultValue `600000` */
  statementTimeoutMs?: number;
}

const EVENT_TYPE_OF: Record<DecisionType, string> = Object.fromEntries(
  Object.entries(AUDIT_OF_DECISION).map(([type, audit]) => [type, audit.event_type]),
) as Record<DecisionType, string>;
const DECISION_OF_EVENT = new Map(
  Object.entries(EVENT_TYPE_OF).map(([type, eventType]) => [eventType, type as DecisionType]),
);
const SEVERITY_ORDER: Severity[] = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];

const ALLOWED = EVENT_TYPE_OF.ALLOW;
const PAUSED = EVENT_TYPE_OF.PAUSE;
const BLOCKED = EVENT_TYPE_OF.BLOCK;
const RETRY = EVENT_TYPE_OF.RETRY;

/** Reads the inputs in one REPEATABLE READ transaction, so every rule sees the same snapshot. */
export async function readLeadScanInputs(
  db: Db,
  options: ReadLeadScanInputsOptions,
): Promise<LeadScanInputs> {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      const timeout = Math.max(1000, Math.round(options.statementTimeoutMs ?? 600_000));
      // JIT compiles these aggregates for seconds because the planner overestimates jsonb_array_elements; the
      // queries themselves take less. work_mem keeps the few sorts (percentile, array_agg) in memory.
      await sql`select set_config('jit', 'off', true), set_config('work_mem', '64MB', true), set_config('statement_timeout', ${String(timeout)}, true)`.execute(
        trx,
      );
      const counted = await countDecisions(trx, options);
      checkAborted(options.signal);
      await copyNotableDecisions(trx, options);
      checkAborted(options.signal);
      const [blockedCodes, churn, retry, shares, highRisk, containment] = [
        await readBlockedCodes(trx, options),
        await readChurnTasks(trx, options),
        await readRetryThenBlock(trx, options),
        await readFindingShares(trx),
        await readHighRiskAllows(trx, options),
        await countHighRiskAllowsByContainment(trx),
      ];
      const lagRule = options.rules.rules.decision_lag_anomaly;
      const lagDetail =
        lagRule.enabled && percentileExceeds(counted.lagSamples, counted.lagOver, lagRule.percentile)
          ? await readLagDetail(trx, options)
          : { percentile_ms: null, slowest: [] };
      return {
        window: options.window,
        decisions: { total: counted.total, by_type: counted.byType },
        blocked_codes: blockedCodes,
        churn_tasks: churn,
        retry_then_block: retry,
        lag: {
          samples: counted.lagSamples,
          over_threshold: counted.lagOver,
          max_ms: counted.maxLagMs,
          ...lagDetail,
        },
        finding_shares: { current: shares.current, previous: shares.previous },
        high_risk_allows: highRisk,
        self_check: {
          blocks: counted.byType.BLOCK ?? 0,
          high_risk_allows: containment,
          findings_without_code: shares.withoutCode,
        },
      };
    });
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted)
    throw signal.reason instanceof Error ? signal.reason : new Error('the lead scan was aborted');
}

interface DecisionCounts {
  total: number;
  byType: Partial<Record<DecisionType, number>>;
  lagSamples: number;
  lagOver: number;
  maxLagMs: number | null;
}

/** Counts the window's decisions by type and lag, a slice at a time (an index-only scan of the window index). */
async function countDecisions(
  trx: QueryExecutor,
  options: ReadLeadScanInputsOptions,
): Promise<DecisionCounts> {
  const { tenantId, window } = options;
  const thresholdMs = options.rules.rules.decision_lag_anomaly.threshold_ms;
  const slices = sliceWindow(window.start, window.end, options.sliceMs);
  const counts: DecisionCounts = { total: 0, byType: {}, lagSamples: 0, lagOver: 0, maxLagMs: null };
  let done = 0;
  for (const slice of slices) {
    const result = await sql<{
      event_type: string;
      decisions: number;
      lag_samples: number;
      lag_over: number;
      max_lag_ms: number | null;
    }>`
      select event_type,
             count(*)::int as decisions,
             count(*) filter (where processed_at >= source_event_ts)::int as lag_samples,
             count(*) filter (where processed_at - source_event_ts > ${thresholdMs}::double precision * interval '1 millisecond')::int as lag_over,
             (extract(epoch from max(processed_at - source_event_ts) filter (where processed_at >= source_event_ts)) * 1000)::float8 as max_lag_ms
        from task_audits
       where tenant_id = ${tenantId} and decision_id is not null
         and source_event_ts >= ${slice.start} and source_event_ts < ${slice.end}
       group by event_type`.execute(trx);
    for (const row of result.rows) {
      const type = DECISION_OF_EVENT.get(row.event_type);
      // Rows with a decision id are decision audits; an event type this build does not know is not one of the five.
      if (!type) continue;
      counts.total += row.decisions;
      counts.byType[type] = (counts.byType[type] ?? 0) + row.decisions;
      counts.lagSamples += row.lag_samples;
      counts.lagOver += row.lag_over;
      if (row.max_lag_ms !== null) counts.maxLagMs = Math.max(counts.maxLagMs ?? 0, row.max_lag_ms);
    }
    done += 1;
    await options.onSlice?.(done, slices.length, counts.total);
    checkAborted(options.signal);
  }
  return counts;
}

/**
 * Copies the notable decisions of this window and the previous one (for the ratio rule) into a temporary
 * table dropped at commit. The planner cannot estimate the notable index's jsonb predicate and would read
 * the whole table instead; a bitmap scan of that index never reads a page twice, so forcing it is never
 * much worse than a sequential scan and usually far better.
 */
async function copyNotableDecisions(trx: QueryExecutor, options: ReadLeadScanInputsOptions): Promise<void> {
  const { tenantId, window } = options;
  // The same misestimate (every row of the window, not the few notable ones) prices handing rows over from
  // parallel workers far too high; priced per notable row, the heap reads (most of this statement) are shared
  // with the workers, as the window's count is. Both settings go back to what they were for the rule queries.
  const previous = await sql<{ parallel_tuple_cost: string }>`
    select current_setting('parallel_tuple_cost') as parallel_tuple_cost,
           set_config('enable_seqscan', 'off', true), set_config('parallel_tuple_cost', '0.003', true)`.execute(
    trx,
  );
  await sql`
    create temporary table lead_scan_notable on commit drop as
    select audit_id, task_id, decision_id, event_type,
           source_event_ts >= ${window.start} as current,
           case when jsonb_typeof(payload -> 'findings') = 'array' then payload -> 'findings' else '[]'::jsonb end as findings,
           payload ->> 'would_have' as would_have
      from task_audits
     where tenant_id = ${tenantId} and decision_id is not null
       and (event_type <> ${sql.lit(ALLOWED)} or payload -> 'findings' <> '[]'::jsonb)
       and source_event_ts >= ${window.previous_start} and source_event_ts < ${window.end}`.execute(trx);
  await sql`select set_config('enable_seqscan', 'on', true), set_config('parallel_tuple_cost', ${previous.rows[0]!.parallel_tuple_cost}, true)`.execute(
    trx,
  );
  // Not analyzed: ANALYZE of the jsonb column costs more than every rule query together, and the planner's
  // size estimate from the table's pages is enough for the hash joins below.
}

async function readBlockedCodes(
  trx: QueryExecutor,
  options: ReadLeadScanInputsOptions,
): Promise<LeadScanInputs['blocked_codes']> {
  const k = options.rules.limits.sample_size;
  const result = await sql<{
    code: string;
    decisions: number;
    sample_decisions: string[] | null;
    sample_tasks: string[] | null;
  }>`
    with blocked as (
      select distinct on (f.code, n.decision_id) f.code, n.decision_id, n.task_id, n.audit_id
        from lead_scan_notable n
        cross join lateral (select e ->> 'code' as code from jsonb_array_elements(n.findings) e) f
       where n.current and n.event_type = ${sql.lit(BLOCKED)} and f.code is not null
       order by f.code, n.decision_id
    )
    select code, count(*)::int as decisions,
           (array_agg(decision_id order by audit_id desc))[1:${k}] as sample_decisions,
           (array_agg(task_id order by audit_id desc))[1:${k}] as sample_tasks
      from blocked group by code order by decisions desc, code limit 10000`.execute(trx);
  return result.rows.map((row) => ({
    code: row.code,
    decisions: row.decisions,
    samples: zipSamples(row.sample_decisions, row.sample_tasks),
  }));
}

function zipSamples(
  decisions: string[] | null,
  tasks: string[] | null,
): Array<{ decision_id: string; task_id: string }> {
  return (decisions ?? []).map((decision_id, i) => ({ decision_id, task_id: tasks?.[i] ?? '' }));
}

/** Tasks paused at least `min_pauses` times with a BLOCK, whose last decision in the window is that BLOCK. */
async function readChurnTasks(
  trx: QueryExecutor,
  options: ReadLeadScanInputsOptions,
): Promise<LeadScanInputs['churn_tasks']> {
  const { tenantId, window, rules } = options;
  const result = await sql<{
    task_id: string;
    pauses: number;
    pause_ids: string[];
    last_decision_id: string;
    last_event_type: string;
    total: number;
  }>`
    with candidates as (
      select task_id,
             count(*) filter (where event_type = ${sql.lit(PAUSED)})::int as pauses,
             (array_agg(decision_id order by audit_id) filter (where event_type = ${sql.lit(PAUSED)}))[1:${rules.limits.sample_size}] as pause_ids
        from lead_scan_notable
       where current
       group by task_id
      having count(*) filter (where event_type = ${sql.lit(PAUSED)}) >= ${rules.rules.pause_block_churn.min_pauses}
         and bool_or(event_type = ${sql.lit(BLOCKED)})
    ), churned as (
      select c.*, last.decision_id as last_decision_id, last.event_type as last_event_type
        from candidates c
        cross join lateral (
          -- The task's last decision in the window, ALLOWs included: the task index, newest first.
          select a.decision_id, a.event_type from task_audits a
           where a.tenant_id = ${tenantId} and a.task_id = c.task_id and a.decision_id is not null
             and a.source_event_ts >= ${window.start} and a.source_event_ts < ${window.end}
           order by a.audit_id desc limit 1) last
       where last.event_type = ${sql.lit(BLOCKED)}
    )
    select *, count(*) over ()::int as total from churned order by task_id limit ${rules.limits.max_findings_per_rule}`.execute(
    trx,
  );
  return {
    total: result.rows[0]?.total ?? 0,
    items: result.rows.map((row) => ({
      task_id: row.task_id,
      pauses: row.pauses,
      pause_decision_ids: row.pause_ids ?? [],
      last_decision_id: row.last_decision_id,
      last_decision_type: DECISION_OF_EVENT.get(row.last_event_type) ?? 'BLOCK',
    })),
  };
}

/** Tasks whose first RETRY in the window is followed by a BLOCK, with that retry and the first BLOCK after it. */
async function readRetryThenBlock(
  trx: QueryExecutor,
  options: ReadLeadScanInputsOptions,
): Promise<LeadScanInputs['retry_then_block']> {
  // Aggregates only, no self-joins: the temporary table has no statistics, and a misestimated join of it
  // with itself turns into a nested loop over every pair of rows.
  const result = await sql<{
    task_id: string;
    retries: number;
    blocks: number;
    retry_decision_id: string;
    block_decision_id: string;
    total: number;
  }>`
    with firsts as (
      select task_id, min(audit_id) as first_retry, (array_agg(decision_id order by audit_id))[1] as retry_decision_id
        from lead_scan_notable where current and event_type = ${sql.lit(RETRY)} group by task_id
    ), followed as (
      select n.task_id, f.retry_decision_id,
             (array_agg(n.decision_id order by n.audit_id) filter (where n.event_type = ${sql.lit(BLOCKED)} and n.audit_id > f.first_retry))[1] as block_decision_id,
             count(*) filter (where n.event_type = ${sql.lit(RETRY)})::int as retries,
             count(*) filter (where n.event_type = ${sql.lit(BLOCKED)})::int as blocks
        from lead_scan_notable n join firsts f using (task_id)
       where n.current and n.event_type in (${sql.lit(RETRY)}, ${sql.lit(BLOCKED)})
       group by n.task_id, f.retry_decision_id, f.first_retry
      having bool_or(n.event_type = ${sql.lit(BLOCKED)} and n.audit_id > f.first_retry)
    )
    select task_id, retries, blocks, retry_decision_id, block_decision_id, count(*) over ()::int as total
      from followed order by task_id limit ${options.rules.limits.max_findings_per_rule}`.execute(trx);
  return { total: result.rows[0]?.total ?? 0, items: result.rows.map(({ total: _total, ...row }) => row) };
}

async function readFindingShares(trx: QueryExecutor): Promise<{
  current: { findings: number; redline: number };
  previous: { findings: number; redline: number };
  withoutCode: number;
}> {
  const result = await sql<{ current: boolean; findings: number; redline: number; without_code: number }>`
    select n.current, count(*)::int as findings,
           count(*) filter (where e ->> 'kind' = 'REDLINE')::int as redline,
           count(*) filter (where e ->> 'code' is null or e ->> 'kind' is null)::int as without_code
      from lead_scan_notable n cross join lateral jsonb_array_elements(n.findings) e
     group by n.current`.execute(trx);
  const current = result.rows.find((r) => r.current);
  const previous = result.rows.find((r) => !r.current);
  return {
    current: { findings: current?.findings ?? 0, redline: current?.redline ?? 0 },
    previous: { findings: previous?.findings ?? 0, redline: previous?.redline ?? 0 },
    withoutCode: current?.without_code ?? 0,
  };
}

async function readHighRiskAllows(
  trx: QueryExecutor,
  options: ReadLeadScanInputsOptions,
): Promise<LeadScanInputs['high_risk_allows']> {
  const floor = options.rules.rules.high_risk_allow.min_finding_severity;
  const severities = SEVERITY_ORDER.slice(SEVERITY_ORDER.indexOf(floor));
  const result = await sql<{
    decision_id: string;
    task_id: string;
    would_have: string | null;
    codes: string[] | null;
    rank: number;
    total: number;
  }>`
    with risky as (
      select n.audit_id, n.decision_id, n.task_id, n.would_have,
             array_agg(distinct e ->> 'code') filter (where e ->> 'severity' = any(${severities}::text[]) and e ->> 'code' is not null) as codes,
             max(array_position(${SEVERITY_ORDER}::text[], e ->> 'severity')) filter (where e ->> 'severity' = any(${severities}::text[])) as rank
        from lead_scan_notable n cross join lateral jsonb_array_elements(n.findings) e
       where n.current and n.event_type = ${sql.lit(ALLOWED)}
       group by n.audit_id, n.decision_id, n.task_id, n.would_have
      having bool_or(e ->> 'severity' = any(${severities}::text[]))
    )
    select decision_id, task_id, would_have, codes, rank, count(*) over ()::int as total
      from risky order by audit_id limit ${options.rules.limits.max_findings_per_rule}`.execute(trx);
  return {
    total: result.rows[0]?.total ?? 0,
    items: result.rows.map((row) => ({
      decision_id: row.decision_id,
      task_id: row.task_id,
      would_have: row.would_have,
      codes: row.codes ?? [],
      severity: SEVERITY_ORDER[row.rank - 1] ?? floor,
    })),
  };
}

/** The self-check's own count of high-risk ALLOWs: JSON containment, not the rule's element-by-element query. */
async function countHighRiskAllowsByContainment(trx: QueryExecutor): Promise<number> {
  const result = await sql<{ count: number }>`
    select count(*)::int as count from lead_scan_notable
     where current and event_type = ${sql.lit(ALLOWED)}
       and (findings @> '[{"severity":"HIGH"}]'::jsonb or findings @> '[{"severity":"CRITICAL"}]'::jsonb)`.execute(
    trx,
  );
  return result.rows[0]?.count ?? 0;
}

/** The lag percentile and the slowest decisions: only read when the percentile is over the threshold. */
async function readLagDetail(
  trx: QueryExecutor,
  options: ReadLeadScanInputsOptions,
): Promise<Pick<LeadScanInputs['lag'], 'percentile_ms' | 'slowest'>> {
  const { tenantId, window, rules } = options;
  const filter = sql`tenant_id = ${tenantId} and decision_id is not null and source_event_ts >= ${window.start} and source_event_ts < ${window.end} and processed_at >= source_event_ts`;
  const percentile = await sql<{ value: number | null }>`
    select (percentile_disc(${rules.rules.decision_lag_anomaly.percentile}::double precision)
              within group (order by extract(epoch from processed_at - source_event_ts)) * 1000)::float8 as value
      from task_audits where ${filter}`.execute(trx);
  const slowest = await sql<{ decision_id: string; task_id: string; lag_ms: number }>`
    select decision_id, task_id, (extract(epoch from processed_at - source_event_ts) * 1000)::float8 as lag_ms
      from task_audits where ${filter}
     order by processed_at - source_event_ts desc, audit_id limit ${Math.max(1, rules.limits.sample_size)}`.execute(
    trx,
  );
  return { percentile_ms: percentile.rows[0]?.value ?? null, slowest: slowest.rows };
}
