/**
 * The scheduler's core: turns a fire into exactly one ledger row, governs it, calls the agent or the fallback
 * and moves the run on as handler calls report back, time out or fail — retries, fallback, breaker, and the
 * migration's red lines included. This class is the facade; each concern is its own file:
 *
 * - govern-fires.ts — governing fires (group commit), with `decideFire` from @warden/domain;
 * - advance-run.ts — recording a call's end and taking the run's next step;
 * - handler-calls.ts — the attempt rows and the jobs or HTTP calls that carry them;
 * - finish-run.ts, breaker-after-run.ts, red-lines.ts, cost-overrun.ts — finishing a run and what follows it;
 * - engine-context.ts — the transaction every step runs in, and its effects after commit.
 *
 * Every step is one Postgres transaction that locks the trigger row, then the execution row (always in that
 * order: no deadlocks), reads what it needs, asks the pure functions in `@warden/domain` what to do, and
 * writes the result. Side effects — handler jobs, HTTP calls, delayed follow-up jobs — happen only after the
 * commit, and each is safe to repeat, so a crash at any point leaves a state some replica can finish from.
 *
 * A handler call's deadline is enforced where the call runs (the SDK trigger worker, the HTTP client here),
 * and for a call whose worker died, by the sweeper: one delayed job per call would double the Redis work of
 * a burst for a case the sweeper covers within seconds.
 */
import type { Db } from '@warden/db';
import type { HandlerJob, HandlerOutcome } from '@warden/domain';
import type { Logger } from '@warden/observability';
import type { WardenQueues } from '@warden/queue';
import type { HandlerDispatcher } from '../handlers/handler-dispatcher.js';
import type { SchedulerMetrics } from '../ops/metrics.js';
import { advanceRun } from './advance-run.js';
import type { AttemptReport, EngineContext, FireOutcome, FireRequest } from './engine-context.js';
import { governFires } from './govern-fires.js';

export type { AttemptReport, FireOutcome, FireRequest } from './engine-context.js';

export interface ExecutionEngineOptions {
  db: Db;
  queues: WardenQueues;
  dispatcher: HandlerDispatcher;
  logger: Logger;
  metrics: SchedulerMetrics;
  /** A handler call's time limit when the trigger sets no `max_duration_ms`. @defaultValue `900000` */
  defaultMaxDurationMs?: number;
  /** Most missed fires recorded when a late fire arrives. @defaultValue `1000` */
  maxMissedRecorded?: number;
  /** The clock (tests). @defaultValue `() => new Date()` */
  now?: () => Date;
}

/** Attempts at recording an HTTP call's outcome before giving up (the call's deadline then settles it). */
const HTTP_OUTCOME_ATTEMPTS = 3;

export class ExecutionEngine {
  private readonly ctx: EngineContext;

  constructor(options: ExecutionEngineOptions) {
    this.ctx = {
      db: options.db,
      queues: options.queues,
      dispatcher: options.dispatcher,
      log: options.logger.child({ module: 'engine' }),
      metrics: options.metrics,
      now: options.now ?? (() => new Date()),
      defaultMaxDurationMs: options.defaultMaxDurationMs ?? 900_000,
      maxMissedRecorded: options.maxMissedRecorded ?? 1000,
      schedules: new Map(),
    };
  }

  /**
   * Governs one fire: records (or finds) its ledger row and decides skip, buffer, delay or start. A duplicate
   * delivery of a fire already governed changes nothing, except re-sending the handler jobs of a run still
   * in flight (a worker that died between commit and dispatch). Returns what happened, for logs and tests.
   */
  async fire(request: FireRequest): Promise<FireOutcome> {
    return (await this.fireMany([request]))[0]!;
  }

  /**
   * {@link fire} for many fires in one transaction (group commit): a burst of fires costs a handful of
   * statements instead of a dozen per fire. Fires of the same trigger go in successive rounds, so each sees
   * the one before it (overlap, caps).
   */
  async fireMany(requests: readonly FireRequest[]): Promise<FireOutcome[]> {
    const outcomes = new Array<FireOutcome>(requests.length);
    let pending = requests.map((request, index) => ({ request, index }));
    while (pending.length > 0) {
      const seen = new Set<string>();
      const round = pending.filter((p) => !seen.has(p.request.trigger_id) && seen.add(p.request.trigger_id));
      pending = pending.filter((p) => !round.includes(p));
      const results = await governFires(
        this.ctx,
        round.map((p) => p.request),
      );
      round.forEach((p, i) => (outcomes[p.index] = results[i]!));
    }
    return outcomes;
  }

  /**
   * Moves a run on: records a handler call's end (once: a late or repeated report changes nothing), then
   * starts the next call, finishes the run, or schedules its retry. Also what a due retry, a jittered start
   * or a buffered run's turn comes through (no report).
   */
  async advance(executionId: string, report?: AttemptReport): Promise<void> {
    const ungoverned = await advanceRun(this.ctx, executionId, report);
    if (ungoverned) await this.fire(ungoverned);
  }

  /**
   * Records a handler outcome reported by an HTTP call made here (retried briefly: losing it would time the
   * call out).
   */
  async recordHttpOutcome(job: HandlerJob, outcome: HandlerOutcome): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.advance(job.execution_id, { attempt_id: job.attempt_id, outcome });
        return;
      } catch (error) {
        if (attempt >= HTTP_OUTCOME_ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }
}
