/**
 * Finishing a run: its end written once (status, served output, cost and LLM calls summed over every call,
 * the cost reservation released, the shadow comparison), its metrics and log line, then the after-run effects
 * in the same transaction — cost overrun, breaker, migration red lines, and the buffered run's turn.
 */
import {
  attemptTotals,
  bufferedExecution,
  inFlightCount,
  updateExecution,
  type CronAttemptRow,
  type CronExecutionRow,
  type TriggerRecord,
} from '@warden/db';
import { fallbackNote, shadowComparison, type ExecutionStep } from '@warden/domain';
import { reopenAfterSkippedProbe, updateBreakerAfterRun } from './breaker-after-run.js';
import { noteCostOverrun } from './cost-overrun.js';
import type { EngineContext, Effects, Trx } from './engine-context.js';
import { checkRedLines } from './red-lines.js';

export async function finishRun(
  trx: Trx,
  effects: Effects,
  ctx: EngineContext,
  input: {
    trigger: TriggerRecord;
    execution: CronExecutionRow;
    attempts: readonly CronAttemptRow[];
    step: Extract<ExecutionStep, { kind: 'finish' }>;
    now: Date;
  },
): Promise<void> {
  const { trigger, execution, step, now } = input;
  const d = trigger.definition;
  const agent = input.attempts.find((a) => a.role === 'agent');
  const fallback = input.attempts.find((a) => a.role === 'fallback');
  const served = step.served_by === 'agent' ? agent : step.served_by === 'fallback' ? fallback : undefined;
  const totals = await attemptTotals(trx, execution.execution_id);
  const comparison = shadowComparison({
    decision_mode: execution.decision_mode,
    agent,
    fallback,
    compare_keys: d.migration.compare_keys,
  });
  const durationMs = execution.started_at ? now.getTime() - execution.started_at.getTime() : null;
  const status = step.status;
  await updateExecution(trx, execution.execution_id, {
    status,
    completed_at: now,
    duration_ms: durationMs,
    output: served?.result ? JSON.stringify(served.result.output ?? null) : null,
    cost_usd: totals.cost_usd,
    llm_calls: totals.llm_calls,
    agent_run_id: (agent?.result?.agent_run_id as string | undefined) ?? null,
    reserved_cost_usd: 0,
    error: status === 'success' || status === 'fallback' ? fallbackNote(agent) : (step.error ?? null),
    skip_reason: step.skip_reason ?? null,
    comparison: comparison ? JSON.stringify(comparison) : null,
    agent_outcome: agent?.status ?? null,
    next_attempt_at: null,
  });
  const mode = execution.decision_mode ?? 'none';
  effects.after.push(() => {
    const m = ctx.metrics;
    m.executions.inc({ status, decision_mode: mode });
    if (durationMs !== null && status !== 'skipped') m.duration.observe({ status }, durationMs / 1000);
    if (totals.cost_usd !== null) m.cost.observe(totals.cost_usd);
    if (totals.llm_calls > 0) m.llmCalls.inc(totals.llm_calls);
    ctx.log.info(
      {
        action: 'finish',
        status,
        event_name: d.event_name,
        execution_id: execution.execution_id,
        decision_mode: mode,
        latency_ms: durationMs,
        run_id: agent?.result?.agent_run_id,
        error: step.error,
      },
      `${d.event_name} ${status}`,
    );
  });

  noteCostOverrun(ctx, effects, trigger, { execution_id: execution.execution_id, cost_usd: totals.cost_usd });
  if (status !== 'skipped')
    await updateBreakerAfterRun(trx, effects, ctx, { trigger, execution, status, now });
  else
    await reopenAfterSkippedProbe(trx, effects, ctx, {
      trigger,
      execution,
      why: step.skip_reason ?? step.error ?? 'skipped',
      now,
    });
  if (agent && agent.status !== 'running') await checkRedLines(trx, effects, ctx, trigger, now);
  if (d.overlap_policy === 'buffer_one') await wakeBufferedRun(trx, effects, trigger, now);
}

/** The run waiting in the `buffer_one` slot starts now, unless another run is still in flight. */
async function wakeBufferedRun(trx: Trx, effects: Effects, trigger: TriggerRecord, now: Date): Promise<void> {
  const next = await bufferedExecution(trx, trigger.trigger_id);
  if (next && (await inFlightCount(trx, trigger.trigger_id, next)) === 0)
    effects.advances.push({ tenant_id: trigger.tenant_id, execution_id: next, at: now });
}
