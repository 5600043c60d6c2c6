/**
 * Governing fires: turns fires into exactly one ledger row each and decides skip, buffer, delay or start, for
 * a group of fires of distinct triggers in one transaction (group commit). The steps, in order:
 *
 * 1. lock the triggers (id order: no deadlocks) and the rows that exist (a duplicate delivery, or a manual
 *    run or backfill written by whoever asked);
 * 2. record the fires a late job hid as missed;
 * 3. read the ledger snapshot governance needs, for all fires in one statement;
 * 4. decide each fire (`decideFire`, pure) and write the decisions — new rows inserted already governed;
 * 5. for started runs, record the handler calls; effects (dispatch, wake-ups, metrics) wait for the commit.
 */
import {
  applyFireDecisions,
  cronExecutionId,
  insertAttempts,
  insertGovernedFires,
  insertMissedFires,
  ledgerSnapshots,
  lockFireExecutions,
  lockTriggers,
  type CronExecutionRow,
  type NewAttempt,
  type TriggerRecord,
} from '@warden/db';
import {
  decideFire,
  hiddenFireTimes,
  zonedDayOf,
  type FireToDecide,
  type FireVerdict,
  type PreviousRun,
} from '@warden/domain';
import { setSpanAttributes } from '@warden/observability';
import { applyBreakerChange } from './breaker-after-run.js';
import {
  cachedScheduleOf,
  runStep,
  type EngineContext,
  type Effects,
  type FireOutcome,
  type FireRequest,
  type Trx,
} from './engine-context.js';
import { resendRunningCalls, startCalls } from './handler-calls.js';

/** The parts of a ledger row governing a fire reads (a new fire has no row yet). */
type FireRow = FireToDecide & Pick<CronExecutionRow, 'triggered_at' | 'params'>;

interface FireToGovern {
  index: number;
  trigger: TriggerRecord;
  row: FireRow;
  /** No row existed: it is inserted already governed. */
  isNew: boolean;
}

const MISSED_FIRE_REASON =
  'no fire was produced for this time: no scheduler was running (or all were busy) when it was due, and BullMQ collapses missed fires into one late run';

/** Governs fires of distinct triggers in one transaction; one outcome per request, in order. */
export async function governFires(
  ctx: EngineContext,
  requests: readonly FireRequest[],
): Promise<FireOutcome[]> {
  const now = ctx.now();
  return runStep(
    ctx,
    async (trx, effects) => {
      const outcomes = new Array<FireOutcome>(requests.length).fill('gone');
      const toGovern = await lockFires(ctx, trx, effects, requests, outcomes, now);
      setSpanAttributes({
        'warden.trigger_ids': requests.map((r) => r.trigger_id),
        'warden.execution_ids': toGovern.map(({ row }) => row.execution_id),
      });
      if (toGovern.length === 0) return outcomes;
      const snapshots = await ledgerSnapshots(
        trx,
        toGovern.map(({ trigger, row }) => ({
          trigger_id: trigger.trigger_id,
          execution_id: row.execution_id,
          scheduled_for: row.scheduled_for,
          day: zonedDayOf(row.scheduled_for, trigger.definition.timezone),
          // Only what the trigger's governance reads is looked up (a burst of plain triggers skips the rest).
          needs: {
            last_success: trigger.definition.cooldown_seconds > 0,
            runs_today: trigger.definition.max_daily_runs !== null,
            cost_today: trigger.definition.max_daily_cost_usd !== null,
          },
        })),
      );
      const decided = toGovern.map((fire) => ({
        fire,
        verdict: decideFire({
          trigger: fire.trigger,
          fire: fire.row,
          ledger: snapshots.get(fire.row.execution_id)!,
          now,
        }),
      }));
      const inserted = await writeDecisions(trx, decided);

      const attempts: NewAttempt[] = [];
      for (const { fire, verdict } of decided) {
        // A new fire's row that someone else wrote meanwhile (a manual run in the same millisecond) is theirs.
        if (fire.isNew && !inserted.has(fire.row.execution_id)) {
          outcomes[fire.index] = 'duplicate';
          continue;
        }
        outcomes[fire.index] = verdict.outcome;
        const previous = snapshots.get(fire.row.execution_id)!.previous_run;
        attempts.push(...(await applyVerdict(ctx, trx, effects, fire, verdict, previous, now)));
      }
      await insertAttempts(trx, attempts);
      setSpanAttributes({
        'warden.fire_outcomes': outcomes,
        'warden.attempt_ids': attempts.map((a) => a.attempt_id),
      });
      return outcomes;
    },
    'scheduler.govern_fires',
  );
}

/**
 * Locks the fires' triggers and existing rows; returns the fires to govern. A fire already governed is a
 * duplicate (its running try's jobs are sent again); a fire of a trigger gone, or of another tenant, stays
 * `gone`.
 */
async function lockFires(
  ctx: EngineContext,
  trx: Trx,
  effects: Effects,
  requests: readonly FireRequest[],
  outcomes: FireOutcome[],
  now: Date,
): Promise<FireToGovern[]> {
  const triggers = await lockTriggers(
    trx,
    requests.map((r) => r.trigger_id),
  );
  const live = requests.flatMap((request, index) => {
    const trigger = triggers.get(request.trigger_id);
    if (!trigger || trigger.tenant_id !== request.tenant_id) return [];
    return [
      { request, index, trigger, executionId: cronExecutionId(trigger.trigger_id, request.scheduled_for) },
    ];
  });
  const existing = await lockFireExecutions(
    trx,
    live.map((f) => f.executionId),
  );
  const toGovern: FireToGovern[] = [];
  const missed: Array<{ tenant_id: string; trigger_id: string; event_name: string; scheduled_for: Date }> =
    [];
  for (const { request, index, trigger, executionId } of live) {
    const found = existing.get(executionId);
    if (found?.governed_at) {
      outcomes[index] = 'duplicate';
      if (found.status === 'running') await resendRunningCalls(trx, effects, trigger, found);
      effects.after.push(() => ctx.metrics.duplicates.inc());
      continue;
    }
    toGovern.push({
      index,
      trigger,
      row: found ?? {
        execution_id: executionId,
        scheduled_for: request.scheduled_for,
        triggered_at: now,
        manual: false,
        backfill: false,
        override_overlap: false,
        params: {},
        retry_count: 0,
      },
      isNew: !found,
    });
    if (request.fromScheduler && !found) {
      const d = trigger.definition;
      const hidden = hiddenFireTimes(
        cachedScheduleOf(ctx, d.expression, d.timezone),
        request.scheduled_for,
        new Date(request.processedOn ?? now.getTime()),
        ctx.maxMissedRecorded,
      );
      for (const at of hidden)
        missed.push({
          tenant_id: trigger.tenant_id,
          trigger_id: trigger.trigger_id,
          event_name: d.event_name,
          scheduled_for: at,
        });
    }
  }
  if (missed.length > 0) {
    const recorded = await insertMissedFires(trx, missed, now, MISSED_FIRE_REASON);
    if (recorded > 0) effects.after.push(() => ctx.metrics.skips.inc({ reason: 'skipped_missed' }, recorded));
  }
  return toGovern;
}

/**
 * Writes the decisions: rows that existed are updated, new ones inserted. Returns the ids actually inserted.
 */
async function writeDecisions(
  trx: Trx,
  decided: ReadonlyArray<{ fire: FireToGovern; verdict: FireVerdict }>,
): Promise<Set<string>> {
  await applyFireDecisions(
    trx,
    decided.filter((x) => !x.fire.isNew).map((x) => x.verdict.decision),
  );
  return insertGovernedFires(
    trx,
    decided
      .filter((x) => x.fire.isNew)
      .map(({ fire, verdict }) => ({
        ...verdict.decision,
        tenant_id: fire.trigger.tenant_id,
        trigger_id: fire.trigger.trigger_id,
        event_name: fire.trigger.definition.event_name,
        scheduled_for: fire.row.scheduled_for,
        triggered_at: fire.row.triggered_at,
      })),
  );
}

/**
 * What a written verdict sets off: the breaker's probe, a skip's log line, a wake-up, or the handler calls.
 */
async function applyVerdict(
  ctx: EngineContext,
  trx: Trx,
  effects: Effects,
  fire: FireToGovern,
  verdict: FireVerdict,
  previous: PreviousRun | null,
  now: Date,
): Promise<NewAttempt[]> {
  const { trigger, row } = fire;
  const { decision, outcome } = verdict;
  if (decision.probe) {
    await applyBreakerChange(trx, effects, ctx, trigger, {
      next: {
        ...trigger.breaker,
        state: 'half_open',
        probe_execution_id: row.execution_id,
        probe_started_at: now,
      },
      transition: 'probing',
      failure_rate: 0,
      runs: 0,
      now,
    });
  }
  if (outcome === 'skipped')
    logSkip(ctx, effects, {
      event_name: trigger.definition.event_name,
      execution_id: row.execution_id,
      reason: decision.skip_reason ?? 'unknown',
      why: verdict.why,
    });
  if (outcome === 'delayed')
    effects.advances.push({
      tenant_id: trigger.tenant_id,
      execution_id: row.execution_id,
      at: decision.next_attempt_at!,
    });
  if (outcome !== 'started') return [];
  if (!row.manual && !row.backfill) {
    const delay = Math.max(0, (now.getTime() - row.scheduled_for.getTime()) / 1000);
    effects.after.push(() => ctx.metrics.delay.observe(delay));
  }
  return startCalls(ctx, effects, { trigger, run: row, roles: verdict.roles, previous, now });
}

/** A skip's metrics and log line. */
function logSkip(
  ctx: EngineContext,
  effects: Effects,
  skip: { event_name: string; execution_id: string; reason: string; why: string | undefined },
): void {
  effects.after.push(() => {
    ctx.metrics.skips.inc({ reason: skip.reason });
    ctx.metrics.executions.inc({ status: 'skipped', decision_mode: 'none' });
    ctx.log.info(
      {
        action: 'skip',
        status: 'skipped',
        event_name: skip.event_name,
        execution_id: skip.execution_id,
        skip_reason: skip.reason,
        reason: skip.why,
      },
      `skipped ${skip.event_name}: ${skip.reason}`,
    );
  });
}
