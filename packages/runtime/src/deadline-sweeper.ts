/**
 * A periodic pass that denies what waited for a person past its deadline (gates, change-set approvals) and sends
 * each "expires soon" notice once. The repository functions it calls are safe with any number of replicas (one
 * transaction per item, `SKIP LOCKED`); this only schedules them and logs what a pass denied.
 */
import type { Logger } from '@warden/observability';
import { PeriodicTask } from './periodic-task.js';

export interface DeadlineSweeperOptions {
  /** The task's name, and the log lines' `module`. */
  name: string;
  logger: Logger;
  /** Pause between passes. */
  intervalMs: number;
  /** Items denied per pass at most; the rest wait for the next one. @defaultValue `100` */
  batchSize?: number;
  /** The clock (tests move it). @defaultValue the current time */
  now?: () => Date;
  /** Denies up to `limit` items past their deadline at `now`; says how many. */
  expire: (at: { now: Date; limit: number }) => Promise<{ expired: number }>;
  /** Records the "expires soon" notices due at `now`. */
  warn: (at: { now: Date; limit: number }) => Promise<unknown>;
  /** The log line for a pass that denied `count` items. */
  describe: (count: number) => string;
}

export function createDeadlineSweeper(options: DeadlineSweeperOptions): PeriodicTask {
  const { logger, name } = options;
  return new PeriodicTask({
    name,
    intervalMs: options.intervalMs,
    logger,
    run: async () => {
      const at = { now: options.now?.() ?? new Date(), limit: options.batchSize ?? 100 };
      const result = await options.expire(at);
      await options.warn(at);
      if (result.expired > 0)
        logger.warn(
          { module: name, action: 'expire', status: 'ok', count: result.expired },
          options.describe(result.expired),
        );
      return result;
    },
  });
}
