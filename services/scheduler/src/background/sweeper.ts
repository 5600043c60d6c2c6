/**
 * The safety net under the queues, in Postgres terms: handler calls past their deadline with no report (their
 * worker died, or its report was lost), retries and delayed starts whose wake-up job was lost, buffered runs
 * whose predecessor ended without waking them, and manual runs or backfills whose fire job never arrived.
 * Nothing here can be stuck `running` for longer than its deadline plus the grace period, whatever Redis
 * lost.
 *
 * One pass at a time (the service runs it every `SWEEP_INTERVAL_MS` as a PeriodicTask); replicas take turns
 * through a Redlock, and the engine's transactions make a pass safe to repeat anyway.
 */
import { overdueAttempts, stalledExecutions, type Db } from '@warden/db';
import type { Logger } from '@warden/observability';
import type { ExecutionEngine } from '../engine/execution-engine.js';
import type { SchedulerMetrics } from '../ops/metrics.js';
import { inLockTurn, type Redlock } from './lock-turn.js';

export interface ExecutionSweeperOptions {
  db: Db;
  engine: ExecutionEngine;
  redlock: Redlock;
  /** Namespaces the lock (the BullMQ prefix), so installations sharing a Redis do not block each other. */
  prefix: string;
  logger: Logger;
  metrics?: SchedulerMetrics;
  /**
   * How long past due a row must be before the sweeper acts (its own job normally comes first).
   * @defaultValue `5000`
   */
  graceMs: number;
  /** Rows per kind per pass. @defaultValue `100` */
  batchSize: number;
}

export interface SweepResult {
  timed_out: number;
  advanced: number;
  governed: number;
}

/** How long one pass may hold the sweep lock. */
const SWEEP_LOCK_TTL_MS = 60_000;

export class ExecutionSweeper {
  private readonly log: Logger;

  constructor(private readonly options: ExecutionSweeperOptions) {
    this.log = options.logger.child({ module: 'sweeper' });
  }

  /** One pass; undefined when another replica is sweeping. */
  sweepOnce(now = new Date()): Promise<SweepResult | undefined> {
    return inLockTurn(this.options.redlock, `${this.options.prefix}:lock:cron-sweep`, SWEEP_LOCK_TTL_MS, () =>
      this.sweep(now),
    );
  }

  private async sweep(now: Date): Promise<SweepResult> {
    const { db, engine, graceMs, batchSize } = this.options;
    const result: SweepResult = { timed_out: 0, advanced: 0, governed: 0 };
    for (const attempt of await overdueAttempts(db, now, graceMs, batchSize)) {
      await this.safely(() =>
        engine.advance(attempt.execution_id, { attempt_id: attempt.attempt_id, outcome: { deadline: true } }),
      );
      result.timed_out += 1;
    }
    for (const row of await stalledExecutions(db, now, graceMs, batchSize)) {
      if (row.governed) {
        await this.safely(() => engine.advance(row.execution_id));
        result.advanced += 1;
      } else {
        await this.safely(() =>
          engine.fire({
            tenant_id: row.tenant_id,
            trigger_id: row.trigger_id,
            scheduled_for: row.scheduled_for,
            fromScheduler: false,
          }),
        );
        result.governed += 1;
      }
    }
    const m = this.options.metrics;
    if (result.timed_out > 0) m?.swept.inc({ action: 'timed_out' }, result.timed_out);
    if (result.advanced > 0) m?.swept.inc({ action: 'advanced' }, result.advanced);
    if (result.governed > 0) m?.swept.inc({ action: 'governed' }, result.governed);
    if (result.timed_out + result.advanced + result.governed > 0)
      this.log.info({ action: 'sweep', status: 'ok', ...result }, 'sweeper moved runs on');
    return result;
  }

  /**
   * One run that cannot be moved on (its trigger's lock is busy, Postgres blinked) waits for the next pass.
   */
  private async safely(work: () => Promise<unknown>): Promise<void> {
    try {
      await work();
    } catch (error) {
      this.log.warn({ action: 'sweep', status: 'error', err: error }, 'could not move a run on; next pass');
    }
  }
}
