/**
 * Rejects change sets nobody approved before their deadline (docs/executor.md, "Expiry"), with a
 * CHANGESET_APPROVAL_EXPIRED audit row. Safe with any number of replicas — see `expireOverdueApprovals`.
 * An approval after the deadline is refused whether or not this has run; the sweep makes the denial visible.
 */
import { expireOverdueApprovals, warnExpiringApprovals, type Db } from '@warden/db';
import type { Logger } from '@warden/observability';
import { createDeadlineSweeper, type PeriodicTask } from '@warden/runtime';

export interface ApprovalExpirySweeperOptions {
  db: Db;
  logger: Logger;
  /** Pause between passes. */
  intervalMs: number;
  /** How long before its deadline a waiting request gets its "expires soon" notification. */
  warnBeforeMs: number;
  /** Change sets rejected per pass at most; the rest wait for the next one. @defaultValue `100` */
  batchSize?: number;
  /** The clock (tests move it). @defaultValue the current time */
  now?: () => Date;
}

export function createApprovalExpirySweeper(options: ApprovalExpirySweeperOptions): PeriodicTask {
  const { db } = options;
  return createDeadlineSweeper({
    name: 'approval-expiry',
    logger: options.logger,
    intervalMs: options.intervalMs,
    ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
    ...(options.now === undefined ? {} : { now: options.now }),
    expire: (at) => expireOverdueApprovals(db, at),
    warn: (at) => warnExpiringApprovals(db, { ...at, withinMs: options.warnBeforeMs }),
    describe: (count) => `${count} change set(s) rejected: their approval expired`,
  });
}
