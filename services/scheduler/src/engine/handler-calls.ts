/**
 * Building handler calls: the attempt rows a step records (with their deadlines) and, after commit, the jobs
 * or HTTP calls that carry each call's context to its handler.
 */
import {
  attemptsOfTry,
  cronAttemptId,
  previousRun,
  type CronExecutionRow,
  type NewAttempt,
  type TriggerRecord,
} from '@warden/db';
import {
  describeTarget,
  handlerCallDeadline,
  handlerContext,
  type HandlerRole,
  type PreviousRun,
  type RunOfCall,
  type Target,
} from '@warden/domain';
import type { EngineContext, Effects, Trx } from './engine-context.js';

function dispatchCall(
  effects: Effects,
  trigger: TriggerRecord,
  run: RunOfCall,
  call: { attempt_id: string; role: HandlerRole; target: Target; deadline: Date },
  previous: PreviousRun | null,
): void {
  effects.dispatch.push({
    tenant_id: trigger.tenant_id,
    target: call.target,
    deadline: call.deadline,
    job: {
      tenant_id: trigger.tenant_id,
      execution_id: run.execution_id,
      attempt_id: call.attempt_id,
      context: handlerContext({
        definition: trigger.definition,
        run,
        role: call.role,
        deadline: call.deadline,
        previous,
      }),
    },
  });
}

/**
 * The handler calls to make for `roles` in the run's current try: their attempt rows (to insert in the step's
 * transaction), and — after commit — their jobs or HTTP calls. A role without a handler is left out.
 */
export function startCalls(
  ctx: EngineContext,
  effects: Effects,
  input: {
    trigger: TriggerRecord;
    run: RunOfCall;
    roles: readonly HandlerRole[];
    previous: PreviousRun | null;
    now: Date;
  },
): NewAttempt[] {
  const { trigger, run, now } = input;
  const d = trigger.definition;
  const maxDuration = d.max_duration_ms ?? ctx.defaultMaxDurationMs;
  const attempts: NewAttempt[] = [];
  for (const role of input.roles) {
    const target = role === 'agent' ? d.agent : d.fallback;
    if (!target) continue;
    const deadline = handlerCallDeadline(target, maxDuration, now);
    const { kind, name } = describeTarget(target);
    const attempt: NewAttempt = {
      attempt_id: cronAttemptId(run.execution_id, run.retry_count, role),
      execution_id: run.execution_id,
      tenant_id: trigger.tenant_id,
      trigger_id: trigger.trigger_id,
      role,
      try: run.retry_count,
      target_kind: kind,
      target: name,
      started_at: now,
      deadline_at: deadline,
    };
    attempts.push(attempt);
    dispatchCall(
      effects,
      trigger,
      run,
      { attempt_id: attempt.attempt_id, role, target, deadline },
      input.previous,
    );
  }
  return attempts;
}

/**
 * Re-sends the queue jobs (handler queues and lead scans) of a running try: a duplicate fire after a crash
 * between commit and dispatch. The jobs keep their ids (derived from the attempt ids), so a job that did reach
 * Redis is not added twice. HTTP calls are not repeated: their deadline settles them.
 */
export async function resendRunningCalls(
  trx: Trx,
  effects: Effects,
  trigger: TriggerRecord,
  execution: CronExecutionRow,
): Promise<void> {
  const attempts = await attemptsOfTry(trx, execution.execution_id, execution.retry_count);
  const running = attempts.filter((a) => a.status === 'running' && a.target_kind !== 'http');
  if (running.length === 0) return;
  const previous = await previousRun(trx, trigger.trigger_id, execution.scheduled_for);
  for (const attempt of running) {
    const target = attempt.role === 'agent' ? trigger.definition.agent : trigger.definition.fallback;
    if (!target || 'url' in target) continue;
    dispatchCall(
      effects,
      trigger,
      execution,
      { attempt_id: attempt.attempt_id, role: attempt.role, target, deadline: attempt.deadline_at },
      previous,
    );
  }
}
