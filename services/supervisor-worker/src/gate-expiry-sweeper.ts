/**
 * Expires pause gates nobody released before their deadline (docs/supervisor.md, "Expiry"): each pass blocks
 * their tasks, with a GATE_EXPIRED audit row. Safe with any number of replicas — see `expireOverdueGates`.
 * A release after the deadline is refused whether or not this has run; the sweep makes the denial visible.
 */
import { expireOverdueGates, warnExpiringGates, type Db } from '@warden/db';
import type { Logger } from '@warden/observability';
import { createDeadlineSweeper, type PeriodicTask } from '@warden/runtime';

export interface GateExpirySweeperOptions {
  db: Db;
  logger: Logger;
  /** Pause between passes. */
  intervalMs: number;
  /** How long before its deadline a waiting request gets its "expires soon" notification. */
  warnBeforeMs: number;
  /** Gates expired per pass at most; the rest wait for the next one. @defaultValue `100` */
  batchSize?: number;
  /** The clock (tests move it). @defaultValue the current time */
  now?: () => Date;
}

export function createGateExpirySweeper(options: GateExpirySweeperOptions): PeriodicTask {
  const { db } = options;
  return createDeadlineSweeper({
    name: 'gate-expiry',
    logger: options.logger,
    intervalMs: options.intervalMs,
    ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
    ...(options.now === undefined ? {} : { now: options.now }),
    expire: (at) => expireOverdueGates(db, at),
    warn: (at) => warnExpiringGates(db, { ...at, withinMs: options.warnBeforeMs }),
    describe: (count) => `${count} gate(s) expired; their tasks are blocked`,
  });
}
