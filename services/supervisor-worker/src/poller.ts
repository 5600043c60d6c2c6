import { deleteCompletedInboxRows, releaseExpiredClaims, takeRowsToReenqueue, type Db } from '@warden/db';
import type { Logger } from '@warden/observability';
import { QUEUE_NAMES, eventJobId, type WardenQueues } from '@warden/queue';
import { auditDeadEvents } from './decision-processor.js';
import type { SupervisorMetrics } from './metrics.js';

export interface PollerOptions {
  db: Db;
  queues: WardenQueues;
  logger: Logger;
  metrics?: SupervisorMetrics;
  /** @defaultValue `10000` */
  intervalMs: number;
  /** @defaultValue `5000` */
  graceMs: number;
  /** @defaultValue `50` */
  batchSize: number;
  maxAttempts: number;
  /** @defaultValue `7` */
  retentionDays: number;
}

export interface PollResult {
  released: number;
  dead: number;
  reenqueued: number;
  deleted: number;
}

/**
 * The safety net under the queue: releases claims whose processor died, re-enqueues rows the queue lost
 * (or never got, when Redis was down at ingest) and, once a day, deletes old completed rows. Several
 * replicas may run it: every step takes its rows with SKIP LOCKED.
 */
export class InboxPoller {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private lastCleanup = 0;

  constructor(private readonly options: PollerOptions) {}

  start(): void {
    const tick = () => {
      this.running = this.pollOnce()
        .catch((error) => this.options.logger.warn({ module: 'poller', action: 'poll', status: 'error', err: error }, 'poll failed; will try again'))
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

  /** One pass; exported for tests and for `warden` maintenance commands. */
  async pollOnce(now = Date.now()): Promise<PollResult> {
    const { db, logger, batchSize } = this.options;
    const { released, dead } = await releaseExpiredClaims(db, this.options.maxAttempts, batchSize);
    if (dead.length > 0) {
      await auditDeadEvents(db, dead);
      this.options.metrics?.failed.inc({ outcome: 'dead' }, dead.length);
    }
    this.options.metrics?.claimsReleased.inc(released.length + dead.length);

    const due = await takeRowsToReenqueue(db, this.options.graceMs, batchSize);
    if (due.length > 0) {
      // A job id of its own per pass: the original job may still sit in the queue's completed set, where
      // BullMQ would take an equal id as a duplicate and drop it.
      await this.options.queues.enqueueBulk(
        QUEUE_NAMES.supervisorEvents,
        'event',
        due.map((row) => ({
          payload: {
            event_id: row.event_id,
            tenant_id: row.tenant_id,
            task_id: row.task_id,
            event_type: row.event_type,
            ts: row.event_ts.toISOString(),
            source: 'polling' as const,
            payload: row.payload,
            ...(row.trace_id ? { trace_id: row.trace_id } : {}),
          },
          options: { jobId: `${eventJobId(row.tenant_id, row.event_id)}-poll-${now}` },
        })),
        { timeoutMs: 5000 },
      );
      this.options.metrics?.reenqueued.inc(due.length);
    }

    let deleted = 0;
    if (now - this.lastCleanup > 24 * 3600 * 1000) {
      this.lastCleanup = now;
      deleted = await deleteCompletedInboxRows(db, new Date(now - this.options.retentionDays * 24 * 3600 * 1000));
    }
    const result = { released: released.length, dead: dead.length, reenqueued: due.length, deleted };
    if (result.released + result.dead + result.reenqueued + result.deleted > 0) {
      logger.info({ module: 'poller', action: 'poll', status: 'ok', ...result }, 'poller pass');
    }
    return result;
  }
}
