/**
 * Advancing runs: records a handler call's end (once: a late or repeated report changes nothing), then asks
 * the run's state machine (`nextExecutionStep`, pure) what comes next and does it — start the next calls,
 * schedule a retry, or finish the run. A due retry, a jittered start and a buffered run's turn come through
 * here too (with no report). The trigger's row is locked before the run's, as everywhere (no deadlocks).
 */
import { setSpanAttributes } from '@warden/observability';
import {
  attemptTotals,
  attemptsOfTry,
  costOfDayExcluding,
  findExecution,
  finishAttempt,
  inFlightCount,
  insertAttempts,
  lockAttempt,
  lockExecution,
  lockTrigger,
  previousRun,
  runsOfDayExcluding,
  updateExecution,
  type CronAttemptRow,
  type CronExecutionRow,
  type TriggerRecord,
} from '@warden/db';
import {
  dailyCostStop,
  handlerCallEnd,
  nextExecutionStep,
  startGate,
  zonedDayOf,
  type AttemptSnapshot,
  type DecisionMode,
  type ExecutionStep,
} from '@warden/domain';
import {
  runStep,
  type AttemptReport,
  type EngineContext,
  type Effects,
  type FireRequest,
  type Trx,
} from './engine-context.js';
import { finishRun } from './finish-run.js';
import { startCalls } from './handler-calls.js';

/** A wake-up that arrives this much early (clock skew between replicas) still counts as due. */
const EARLY_TOLERANCE_MS = 50;

/**
 * Moves a run on. Returns the fire to govern instead when the run was never governed (a manual run or
 * backfill whose fire job was lost): governing takes the trigger's lock in its own transaction.
 */
export async function advanceRun(
  ctx: EngineContext,
  executionId: string,
  report?: AttemptReport,
): Promise<FireRequest | undefined> {
  const peek = await findExecution(ctx.db, executionId);
  if (!peek) return undefined;
  const now = ctx.now();
  return runStep(
    ctx,
    async (trx, effects): Promise<FireRequest | undefined> => {
      setSpanAttributes({
        'warden.execution_id': executionId,
        ...(report ? { 'warden.attempt_id': report.attempt_id } : {}),
      });
      const trigger = await lockTrigger(trx, peek.trigger_id, { includeDeleted: true });
      const execution = await lockExecution(trx, executionId);
      if (!trigger || !execution || !['pending', 'running'].includes(execution.status)) return undefined;
      if (report && !(await recordReport(trx, execution, report, now))) return undefined;
      if (execution.status === 'pending') {
        if (!execution.governed_at)
          return {
            tenant_id: execution.tenant_id,
            trigger_id: execution.trigger_id,
            scheduled_for: execution.scheduled_for,
            fromScheduler: false,
          };
        if (execution.buffered && (await inFlightCount(trx, trigger.trigger_id, execution.execution_id)) > 0)
          return undefined;
        // A job that came early (clock skew between replicas) waits for the one at the right time.
        if (
          !execution.buffered &&
          execution.next_attempt_at &&
          execution.next_attempt_at.getTime() > now.getTime() + EARLY_TOLERANCE_MS
        )
          return undefined;
      }
      await progress(ctx, trx, effects, trigger, execution, now);
      return undefined;
    },
    'scheduler.advance_run',
  );
}

/** Writes a handler call's end. False when the call was no longer running (a late or repeated report). */
async function recordReport(
  trx: Trx,
  execution: CronExecutionRow,
  report: AttemptReport,
  now: Date,
): Promise<boolean> {
  const attempt = await lockAttempt(trx, report.attempt_id);
  if (!attempt || attempt.execution_id !== execution.execution_id || attempt.status !== 'running')
    return false;
  // A failure that reports no cost is charged the run's reservation (the daily cap must see it).
  const end = handlerCallEnd(attempt, report.outcome, now, Number(execution.reserved_cost_usd));
  if (!end) return false;
  return (await finishAttempt(trx, { attempt_id: attempt.attempt_id, ...end, now })) !== undefined;
}

/** Asks the state machine what comes next for this try and does it. */
async function progress(
  ctx: EngineContext,
  trx: Trx,
  effects: Effects,
  trigger: TriggerRecord,
  execution: CronExecutionRow,
  now: Date,
): Promise<void> {
  const d = trigger.definition;
  const attempts = await attemptsOfTry(trx, execution.execution_id, execution.retry_count);
  const step = nextExecutionStep({
    mode: execution.decision_mode as DecisionMode,
    fallback_strategy: d.fallback_strategy,
    has_fallback: d.fallback !== null,
    attempts: attempts.map(toSnapshot),
    retry: {
      retry_on_failure: d.retry_on_failure,
      max_retries: d.max_retries,
      retry_delay_seconds: d.retry_delay_seconds,
    },
    retry_count: execution.retry_count,
    probe: execution.probe,
  });

  if (step.kind === 'wait') return;
  // A run that goes on after a call — the fallback after the agent, or a retry — spends again: it must fit the
  // daily cap with what it already spent, or it stops here.
  if (step.kind === 'start' && execution.started_at !== null) {
    const stop = await dailyCostStopOf(trx, trigger, execution);
    if (stop) {
      const stopped: ExecutionStep = { kind: 'finish', status: 'failed', served_by: null, error: stop };
      await finishRun(trx, effects, ctx, { trigger, execution, attempts, step: stopped, now });
      return;
    }
  }
  // A run that waited after governance (buffer_one, jitter) is governed again now: the trigger may have been
  // paused, its breaker opened or its caps filled in the meantime.
  if (step.kind === 'start' && execution.started_at === null) {
    // The breaker's own probe is what a half-open breaker waits for: its state does not stop it.
    const ownProbe =
      execution.probe &&
      trigger.breaker.state === 'half_open' &&
      trigger.breaker.probe_execution_id === execution.execution_id;
    const day = zonedDayOf(execution.scheduled_for, d.timezone);
    const skip = startGate({
      enabled: d.enabled,
      paused: trigger.paused,
      pause_source: trigger.pause_source,
      pause_note: trigger.pause_note,
      breaker_state: ownProbe ? 'closed' : trigger.breaker.state,
      breaker_reason: trigger.breaker.reason,
      max_daily_runs: d.max_daily_runs,
      runs_today:
        d.max_daily_runs === null
          ? 0
          : await runsOfDayExcluding(trx, trigger.trigger_id, day, execution.execution_id),
      cost_stop: await dailyCostStopOf(trx, trigger, execution),
    });
    if (skip) {
      const skipped: ExecutionStep = {
        kind: 'finish',
        status: 'skipped',
        served_by: null,
        skip_reason: skip.skip_reason,
        error: skip.why,
      };
      await finishRun(trx, effects, ctx, { trigger, execution, attempts, step: skipped, now });
      return;
    }
  }
  if (step.kind === 'start') {
    const firstStart = execution.started_at === null;
    const started = await updateExecution(trx, execution.execution_id, {
      status: 'running',
      started_at: execution.started_at ?? now,
      next_attempt_at: null,
      buffered: false,
    });
    const previous = await previousRun(trx, trigger.trigger_id, started.scheduled_for);
    await insertAttempts(
      trx,
      startCalls(ctx, effects, { trigger, run: started, roles: step.roles, previous, now }),
    );
    if (firstStart && !execution.manual && !execution.backfill) {
      const delay = (now.getTime() - execution.scheduled_for.getTime()) / 1000;
      effects.after.push(() => ctx.metrics.delay.observe(Math.max(0, delay)));
    }
    return;
  }
  if (step.kind === 'retry') {
    const at = new Date(now.getTime() + step.delay_seconds * 1000);
    // The retry keeps its reservation and the ledger shows what the failed try spent: fires governed while it
    // waits see both, and the retry is checked against the cap again when it starts.
    const spent = await attemptTotals(trx, execution.execution_id);
    await updateExecution(trx, execution.execution_id, {
      cost_usd: spent.cost_usd,
      status: 'pending',
      retry_count: execution.retry_count + 1,
      next_attempt_at: at,
      error: step.error,
    });
    effects.advances.push({ tenant_id: trigger.tenant_id, execution_id: execution.execution_id, at });
    effects.after.push(() =>
      ctx.log.warn(
        {
          action: 'retry',
          status: 'scheduled',
          event_name: d.event_name,
          execution_id: execution.execution_id,
          retry: execution.retry_count + 1,
          delay_s: step.delay_seconds,
          error: step.error,
        },
        `retrying ${d.event_name} in ${step.delay_seconds} s`,
      ),
    );
    return;
  }
  await finishRun(trx, effects, ctx, { trigger, execution, attempts, step, now });
}

/** Why the run must stop for the daily cost cap before its next calls, or null. */
async function dailyCostStopOf(
  trx: Trx,
  trigger: TriggerRecord,
  execution: CronExecutionRow,
): Promise<string | null> {
  const d = trigger.definition;
  if (d.max_daily_cost_usd === null) return null;
  const day = zonedDayOf(execution.scheduled_for, d.timezone);
  const [others, spent] = await Promise.all([
    costOfDayExcluding(trx, trigger.trigger_id, day, execution.execution_id),
    attemptTotals(trx, execution.execution_id),
  ]);
  return dailyCostStop({
    cap_usd: d.max_daily_cost_usd,
    others_today_usd: others,
    run_spent_usd: spent.cost_usd ?? 0,
    reservation_usd: Number(execution.reserved_cost_usd),
  });
}

function toSnapshot(attempt: CronAttemptRow): AttemptSnapshot {
  return {
    role: attempt.role,
    status: attempt.status,
    error_kind: attempt.error_kind as AttemptSnapshot['error_kind'],
    error: attempt.error,
  };
}
