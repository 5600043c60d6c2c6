/**
 * What the scheduler's two queues carry, turned into engine calls: `cron-fires` (a fire, an `advance`
 * wake-up, a `reconcile` request) and `cron-results` (a handler's report). Fires go through the group
 * committer, so a burst of due triggers is governed a few hundred per transaction.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import {
  HandlerReportSchema,
  type HandlerOutcome,
  type HandlerReport,
  type HandlerResult,
} from '@warden/domain';
import { unavailableDependencyOf, type GroupCommitter } from '@warden/runtime';

/** How long a job waits before trying again while Postgres (or Redis) is unavailable. */
export const OUTAGE_RETRY_MS = 2000;

/** For `waitOutOutage`: an unavailable dependency postpones a job instead of using one of its attempts. */
export const waitOutOutage = (error: unknown): number | undefined =>
  unavailableDependencyOf(error) ? OUTAGE_RETRY_MS : undefined;
import type { JobSchedulerReconciler } from './background/reconciler.js';
import type { ExecutionEngine, FireOutcome, FireRequest } from './engine/execution-engine.js';

/** The fire time of a job a job scheduler produced: the millis in its id `repeat:<trigger_id>:<millis>`. */
export function fireTimeOf(job: Pick<Job, 'id'>): Date | undefined {
  const match = /^repeat:.+:(\d+)$/.exec(job.id ?? '');
  return match ? new Date(Number(match[1])) : undefined;
}

/**
 * A `fire` job as a fire request: from a job scheduler (the fire time in its id) or a manual run / backfill.
 */
export function fireRequestOf(
  payload: {
    tenant_id: string;
    trigger_id: string;
    scheduled_for?: string;
    priority?: number;
    first_processed_on?: number;
  },
  job: Pick<Job, 'id' | 'processedOn'>,
): FireRequest {
  const fromScheduler = payload.scheduled_for === undefined;
  const scheduledFor = payload.scheduled_for ? new Date(payload.scheduled_for) : fireTimeOf(job);
  if (!scheduledFor)
    throw new UnrecoverableError(`fire job ${job.id} has neither scheduled_for nor a job scheduler id`);
  return {
    tenant_id: payload.tenant_id,
    trigger_id: payload.trigger_id,
    scheduled_for: scheduledFor,
    fromScheduler,
    ...(payload.priority !== undefined ? { priority: payload.priority } : {}),
    ...(payload.first_processed_on !== undefined
      ? { processedOn: payload.first_processed_on }
      : job.processedOn
        ? { processedOn: job.processedOn }
        : {}),
  };
}

/** Handles one `cron-fires` job. */
export function cronFiresProcessor(deps: {
  fires: GroupCommitter<FireRequest, FireOutcome>;
  engine: ExecutionEngine;
  reconciler: JobSchedulerReconciler;
}) {
  return async (payload: unknown, job: Job, name: string): Promise<unknown> => {
    if (name === 'fire') {
      const fire = payload as Parameters<typeof fireRequestOf>[0];
      try {
        return await deps.fires.submit(fireRequestOf(fire, job));
      } catch (error) {
        // The worker puts the job back to wait out the outage (waitOutOutage); remember when it first came.
        if (unavailableDependencyOf(error) && fire.first_processed_on === undefined && job.processedOn)
          await job.updateData({ ...fire, first_processed_on: job.processedOn });
        throw error;
      }
    }
    if (name === 'advance') return deps.engine.advance((payload as { execution_id: string }).execution_id);
    const { trigger_id } = payload as { trigger_id?: string };
    return trigger_id ? deps.reconciler.reconcileOne(trigger_id) : deps.reconciler.reconcileAll();
  };
}

/** A handler's report as the outcome the engine records. */
export function outcomeOf(report: HandlerReport): HandlerOutcome {
  return report.ok
    ? // Checked against the result schema where it is recorded (a bad one fails the call as `validation`).
      { ok: true, result: (report.result ?? {}) as HandlerResult }
    : {
        ok: false,
        kind: report.error?.kind ?? 'handler',
        message: report.error?.message ?? 'the handler reported a failure without a message',
        ...(report.error?.cost_usd !== undefined ? { cost_usd: report.error.cost_usd } : {}),
        ...(report.error?.llm_calls !== undefined ? { llm_calls: report.error.llm_calls } : {}),
      };
}

/** Handles one `cron-results` job. */
export function cronResultsProcessor(engine: ExecutionEngine) {
  return async (payload: unknown): Promise<void> => {
    const report = HandlerReportSchema.parse(payload);
    await engine.advance(report.execution_id, { attempt_id: report.attempt_id, outcome: outcomeOf(report) });
  };
}
