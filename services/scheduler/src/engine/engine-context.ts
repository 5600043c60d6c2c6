/**
 * What every step of the engine shares: its dependencies, the request and report shapes, and the one way a
 * step runs — a Postgres transaction that collects side effects, which happen only after the commit.
 *
 * Side effects (handler jobs, HTTP calls, delayed `advance` jobs, metrics and log lines) wait for the commit
 * so that nothing is announced that did not happen; each is safe to repeat, so a crash between commit and
 * effect leaves a state the sweeper or a duplicate delivery finishes.
 */
import { limitLockWait, type Db, type QueryExecutor } from '@warden/db';
import { scheduleOf, type HandlerOutcome, type Schedule } from '@warden/domain';
import { groupMemberLinks, withSpan, type Logger } from '@warden/observability';
import type { WardenQueues } from '@warden/queue';
import type { DispatchRequest, HandlerDispatcher } from '../handlers/handler-dispatcher.js';
import type { SchedulerMetrics } from '../ops/metrics.js';

/** A fire to govern: from a job scheduler, a manual run, a backfill, or the sweeper. */
export interface FireRequest {
  tenant_id: string;
  trigger_id: string;
  scheduled_for: Date;
  /**
   * From a job scheduler: fire times between this one and `processedOn` never got a job and are recorded as
   * missed.
   */
  fromScheduler: boolean;
  /** When the fire's job became active (ms). */
  processedOn?: number;
  /** The trigger's priority (from the job scheduler's job): higher is governed first under load. */
  priority?: number;
}

/** What a fire came to. */
export type FireOutcome = 'gone' | 'duplicate' | 'skipped' | 'buffered' | 'delayed' | 'started';

/** A handler call's end: its outcome, or its deadline passing (seen by the sweeper). */
export interface AttemptReport {
  attempt_id: string;
  outcome: HandlerOutcome | { deadline: true };
}

/** What to do once the transaction committed. */
export interface Effects {
  /** Handler calls to send. */
  dispatch: DispatchRequest[];
  /** Delayed `advance` jobs: a retry, a jittered start, a buffered run's turn. */
  advances: Array<{ tenant_id: string; execution_id: string; at: Date }>;
  /** Metrics and log lines. */
  after: Array<() => void>;
}

/** The transaction a step runs in (it holds the trigger's and the run's row locks). */
export type Trx = QueryExecutor;

export interface EngineContext {
  db: Db;
  queues: WardenQueues;
  dispatcher: HandlerDispatcher;
  log: Logger;
  metrics: SchedulerMetrics;
  now: () => Date;
  /** A handler call's time limit when the trigger sets none. */
  defaultMaxDurationMs: number;
  /** Most missed fires recorded when a late fire arrives. */
  maxMissedRecorded: number;
  /** Parsed schedules (see {@link cachedScheduleOf}). */
  schedules: Map<string, Schedule>;
}

/**
 * Longest wait for a row lock: a stuck statement must not hold a trigger's lock (and every fire of it) for
 * long.
 */
const LOCK_WAIT_MS = 10_000;

/**
 * Runs one step: `work` in one transaction, then — once it committed — the effects it collected (see
 * {@link runEffects}). Returns what `work` returned. With tracing on the step is a span named `step` (its
 * handler calls are children of it); `work` adds what it touched with `setSpanAttributes`.
 */
export async function runStep<T>(
  ctx: EngineContext,
  work: (trx: Trx, effects: Effects) => Promise<T>,
  step = 'scheduler.step',
): Promise<T> {
  // Governing a group of fires: the group's other fire jobs are linked (see GroupCommitter).
  return withSpan(step, { links: groupMemberLinks() }, async () => {
    const effects: Effects = { dispatch: [], advances: [], after: [] };
    const result = await ctx.db.transaction().execute(async (trx) => {
      await limitLockWait(trx, LOCK_WAIT_MS);
      return work(trx, effects);
    });
    await runEffects(ctx, effects);
    return result;
  });
}

/**
 * Side effects after commit. A failure here is logged: deadlines and the sweeper repair what did not happen.
 */
async function runEffects(ctx: EngineContext, effects: Effects): Promise<void> {
  for (const fn of effects.after) {
    try {
      fn();
    } catch {}
  }
  const now = Date.now();
  const jobs: Array<Promise<unknown>> = [];
  if (effects.dispatch.length > 0) jobs.push(ctx.dispatcher.dispatch(effects.dispatch));
  if (effects.advances.length > 0) {
    jobs.push(
      ctx.queues.enqueueBulk(
        'cron-fires',
        'advance',
        effects.advances.map((a) => ({
          payload: { tenant_id: a.tenant_id, execution_id: a.execution_id },
          // Unique per wake-up: a finished job with the same id would make BullMQ drop this one.
          options: {
            jobId: `advance-${a.execution_id}-${a.at.getTime()}`,
            delay: Math.max(0, a.at.getTime() - now),
          },
        })),
      ),
    );
  }
  for (const r of await Promise.allSettled(jobs)) {
    if (r.status === 'rejected')
      ctx.log.warn(
        { action: 'after_commit', status: 'error', err: r.reason },
        'a follow-up job could not be queued; the sweeper will pick the run up',
      );
  }
}

/** Most schedules kept parsed; past it the cache starts over (triggers come and go). */
const MAX_CACHED_SCHEDULES = 10_000;

/** A trigger's parsed schedule: parsing a cron pattern on every fire is measurable in a burst. */
export function cachedScheduleOf(ctx: EngineContext, expression: string, timezone: string): Schedule {
  const key = `${timezone} ${expression}`;
  let schedule = ctx.schedules.get(key);
  if (!schedule) {
    if (ctx.schedules.size > MAX_CACHED_SCHEDULES) ctx.schedules.clear();
    schedule = scheduleOf(expression, timezone);
    ctx.schedules.set(key, schedule);
  }
  return schedule;
}
