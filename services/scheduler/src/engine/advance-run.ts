/**
 * Advancing runs: records a handler call's end (once: a late or repeated report changes nothing), then asks
 * the run's state machine (`nextExecutionStep`, pure) what comes next and does it — start the next calls,
 * schedule a retry, or finish the run. A due retry, a jittered start and a buffered run's turn come through
 * here too (with no report). The trigger's row is locked before the run's, as everywhere (no deadlocks).
 */
import {
  attemptsOfTry,
  findExecution,
  finishAttempt,
  inFlightCount,
  insertAttempts,
  lockAttempt,
  lockExecution,
  lockTrigger,
  previousRun,
  updateExecution,
  type CronAttemptRow,
  type CronExecutionRow,
  type TriggerRecord,
} from '@warden/db';
import { handlerCallEnd, nextExecutionStep, type AttemptSnapshot, type DecisionMode } from '@warden/domain';
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
  return runStep(ctx, async (trx, effects): Promise<FireRequest | undefined> => {
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
  });
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
  const end = handlerCallEnd(attempt, report.outcome, now);
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
    await updateExecution(trx, execution.execution_id, {
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

function toSnapshot(attempt: CronAttemptRow): AttemptSnapshot {
  return {
    role: attempt.role,
    status: attempt.status,
    error_kind: attempt.error_kind as AttemptSnapshot['error_kind'],
    error: attempt.error,
  };
}
