/**
 * The trigger's circuit breaker after a run: the next state from the runs in its window (`breakerAfterRun`,
 * pure), written with what the transition does to the trigger (opening pauses it, closing resumes it) and its
 * audit row, under the trigger's row lock. An opened breaker is an alert.
 */
import {
  appendTriggerAudits,
  recentRunStatuses,
  writeTriggerState,
  type CronExecutionRow,
  type TriggerRecord,
} from '@warden/db';
import {
  breakerAfterRun,
  breakerAfterSkippedProbe,
  breakerTransition,
  type BreakerState,
  type BreakerTransitionName,
  type ExecutionStatus,
} from '@warden/domain';
import type { EngineContext, Effects, Trx } from './engine-context.js';

/**
 * Writes a breaker transition: the trigger's new state and, unless it is the start of a probe, its audit row.
 */
export async function applyBreakerChange(
  trx: Trx,
  effects: Effects,
  ctx: EngineContext,
  trigger: TriggerRecord,
  input: {
    next: BreakerState;
    transition: BreakerTransitionName;
    failure_rate: number;
    runs: number;
    now: Date;
  },
): Promise<void> {
  const { change, audit } = breakerTransition(trigger, {
    event_name: trigger.definition.event_name,
    ...input,
  });
  if (change) await writeTriggerState(trx, trigger.trigger_id, change, input.now);
  if (audit) await appendTriggerAudits(trx, trigger.tenant_id, [audit], input.now);
  if (input.transition === 'probing') return;
  const transition = input.transition;
  effects.after.push(() => {
    ctx.metrics.breakerTransitions.inc({ transition });
    const name = trigger.definition.event_name;
    const fields = {
      action: 'circuit_breaker',
      status: transition,
      event_name: name,
      tenant_id: trigger.tenant_id,
      failure_rate: input.failure_rate,
      runs: input.runs,
    };
    if (transition === 'closed')
      ctx.log.info(fields, `circuit breaker of ${name} closed: the probe succeeded`);
    // The alert: an opened breaker pauses the trigger until a probe succeeds.
    else
      ctx.log.error(
        { ...fields, alert: true },
        `ALERT circuit breaker of ${name} ${transition}: ${input.next.reason}; the trigger is paused`,
      );
  });
}

/** Updates the breaker after a run ended with `status` (skips are not runs: the caller leaves them out). */
export async function updateBreakerAfterRun(
  trx: Trx,
  effects: Effects,
  ctx: EngineContext,
  input: { trigger: TriggerRecord; execution: CronExecutionRow; status: ExecutionStatus; now: Date },
): Promise<void> {
  const { trigger, now } = input;
  const config = trigger.definition.circuit_breaker;
  const recent = await recentRunStatuses(trx, trigger.trigger_id, trigger.breaker_reset_at, config.window);
  const verdict = breakerAfterRun({
    config,
    breaker: trigger.breaker,
    execution_id: input.execution.execution_id,
    status: input.status,
    recent,
    now,
  });
  if (!verdict.transition) return;
  await applyBreakerChange(trx, effects, ctx, trigger, {
    next: verdict.state,
    transition: verdict.transition,
    failure_rate: verdict.failure_rate,
    runs: verdict.runs,
    now,
  });
}

/** A half-open probe that ended skipped opens the breaker again with a fresh reset timer (it proved nothing). */
export async function reopenAfterSkippedProbe(
  trx: Trx,
  effects: Effects,
  ctx: EngineContext,
  input: { trigger: TriggerRecord; execution: CronExecutionRow; why: string; now: Date },
): Promise<void> {
  const next = breakerAfterSkippedProbe({
    breaker: input.trigger.breaker,
    execution_id: input.execution.execution_id,
    why: input.why,
    now: input.now,
  });
  if (!next) return;
  await applyBreakerChange(trx, effects, ctx, input.trigger, {
    next,
    transition: 'reopened',
    failure_rate: 0,
    runs: 0,
    now: input.now,
  });
}
