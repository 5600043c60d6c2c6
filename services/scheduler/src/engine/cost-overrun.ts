/**
 * A finished run that cost more than the trigger's `max_cost_per_run_usd`: the run is not undone (its cost is
 * spent), but it is counted and logged so the estimate reserved for the next runs can be raised.
 */
import type { TriggerRecord } from '@warden/db';
import type { EngineContext, Effects } from './engine-context.js';

export function noteCostOverrun(
  ctx: EngineContext,
  effects: Effects,
  trigger: TriggerRecord,
  run: { execution_id: string; cost_usd: number | null },
): void {
  const d = trigger.definition;
  const max = d.max_cost_per_run_usd;
  if (max === null || run.cost_usd === null || run.cost_usd <= max) return;
  effects.after.push(() => {
    ctx.metrics.costOverruns.inc();
    ctx.log.warn(
      {
        action: 'cost_overrun',
        event_name: d.event_name,
        execution_id: run.execution_id,
        cost_usd: run.cost_usd,
        max,
      },
      `${d.event_name} cost more than max_cost_per_run_usd`,
    );
  });
}
