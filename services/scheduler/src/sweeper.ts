/**
 * The safety net under the queues, in Postgres terms: handler calls past their deadline with no report (their
 * worker died, or its report was lost), retries and delayed starts whose wake-up job was lost, buffered runs whose predecessor ended without
 * waking them, and manual runs or backfills whose fire job never arrived. Nothing here can be stuck `running`
 * for longer than its deadline plus the grace period, whatever Redis lost.
 *
 * Replicas take turns through a Redlock; the engine's transactions make a pass safe to repeat anyway.
 */
import { overdueAttempts, stalledExecutions, type Db } from '@warden/db';
import type { Logger } from '@warden/observability';
import type { createRedlock } from '@warden/queue';
import type { ExecutionEngine } from './execution-engine.js';
import { isLockHeldError } from './lock-held.js';
import type { SchedulerMetrics } from './metrics.js';

export interface ExecutionSweeperOptions {
  db: Db;
  engine: ExecutionEngine;
  redlock: ReturnType<typeof createRedlock>;
  prefix: string;
  logger: Logger;
  metrics?: SchedulerMetrics;
  /** @defaultValue `5000` */
  intervalMs: number;
  /** How long past due a row must be before the sweeper acts (its own job normally comes first). @defaultValue `5000` */
  graceMs: number;
  /** Rows per kind per pass. @defaultValue `100` */
  batchSize: number;
}

export interface SweepResult {
  timed_out: number;
  advanced: number;
  governed: number;
}

export class ExecutionSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private readonly log: Logger;

  constructor(private readonly options: ExecutionSweeperOptions) {
    this.log = options.logger.child({ module: 'sweeper' });
  }

  start(): void {
    const tick = () => {
      this.running = this.sweepOnce()
        .catch((error) =>
          this.log.warn({ action: 'sweep', status: 'error', err: error }, 'sweep failed; will try again'),
        )
        .finally(() => {
          this.running = undefined;
          if (this.timer) this.timer = setTimeout(tick, this.options.intervalMs);
        });
    };
    this.timer = setTimeout(tick, this.options.intervalMs);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One pass; undefined when another replica is sweeping. */
  async sweepOnce(now = new Date()): Promise<SweepResult | undefined> {
    try {
      return await this.options.redlock.using(
        [`${this.options.prefix}:lock:cron-sweep`],
        60_000,
        async () => {
          const { db, engine, graceMs, batchSize } = this.options;
          const result: SweepResult = { timed_out: 0, advanced: 0, governed: 0 };
          for (const attempt of await overdueAttempts(db, now, graceMs, batchSize)) {
            await this.safely(() =>
              engine.advance(attempt.execution_id, {
                attempt_id: attempt.attempt_id,
                outcome: { deadline: true },
              }),
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
        },
      );
    } catch (error) {
      if (await isLockHeldError(error)) return undefined;
      throw error;
    }
  }

  private async safely(work: () => Promise<unknown>): Promise<void> {
    try {
      await work();
    } catch (error) {
      this.log.warn({ action: 'sweep', status: 'error', err: error }, 'could not move a run on; next pass');
    }
  }
}
