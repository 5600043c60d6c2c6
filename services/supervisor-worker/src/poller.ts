import {
  anchorAuditChains,
  deleteCompletedInboxRows,
  releaseExpiredClaims,
  takeRowsToReenqueue,
  type Db,
} from '@warden/db';
import type { AuditKey } from '@warden/domain';
import type { Logger } from '@warden/observability';
import { QUEUE_NAMES, eventJobId, type WardenQueues } from '@warden/queue';
import { PeriodicTask } from '@warden/runtime';
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
  /** Keys to sign audit anchors with (the first signs); none: no anchoring. @defaultValue `[]` */
  auditKeys?: readonly AuditKey[];
  /** Least time between two anchoring passes. @defaultValue `60000` */
  anchorIntervalMs?: number;
}

export interface PollResult {
  released: number;
  dead: number;
  reenqueued: number;
  deleted: number;
  /** Audit chains anchored in this pass. */
  anchored: number;
}

/**
 * The safety net under the queue: releases claims whose processor died, re-enqueues rows the queue lost
 * (or never got, when Redis was down at ingest) and, once a day, deletes old completed rows. Several
 * replicas may run it: every step takes its rows with SKIP LOCKED.
 */
export class InboxPoller {
  private readonly periodic: PeriodicTask;
  private lastCleanup = 0;
  private lastAnchor = 0;

  constructor(private readonly options: PollerOptions) {
    this.periodic = new PeriodicTask({
      name: 'poller',
      intervalMs: options.intervalMs,
      run: () => this.pollOnce(),
      logger: options.logger,
    });
  }

  /** Polls every `intervalMs` (after each pass ends) until {@link stop}. */
  start(): void {
    this.periodic.start();
  }

  /** Cancels the next pass and waits for the one in flight. */
  async stop(): Promise<void> {
    await this.periodic.stop();
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
      deleted = await deleteCompletedInboxRows(
        db,
        new Date(now - this.options.retentionDays * 24 * 3600 * 1000),
      );
    }
    const anchored = await this.anchorAuditChains(now);
    const result = {
      released: released.length,
      dead: dead.length,
      reenqueued: due.length,
      deleted,
      anchored,
    };
    if (result.released + result.dead + result.reenqueued + result.deleted + result.anchored > 0) {
      logger.info({ module: 'poller', action: 'poll', status: 'ok', ...result }, 'poller pass');
    }
    return result;
  }

  /**
   * Signs a checkpoint of each audit chain that grew, at most every `anchorIntervalMs`: after it, rows up to
   * the anchor cannot be rewritten, even by someone who can write every table, without `warden audit verify`
   * naming it. A chain that does not verify is not anchored, and says so loudly every pass.
   */
  private async anchorAuditChains(now: number): Promise<number> {
    const [key] = this.options.auditKeys ?? [];
    if (!key || now - this.lastAnchor < (this.options.anchorIntervalMs ?? 60_000)) return 0;
    this.lastAnchor = now;
    let results;
    try {
      results = await anchorAuditChains(this.options.db, {
        key,
        keys: this.options.auditKeys ?? [],
        now: new Date(now),
      });
    } catch (error) {
      // The inbox work of this pass is done; anchoring is tried again next interval.
      this.options.logger.warn(
        { module: 'poller', action: 'anchor', status: 'error', err: error },
        'audit anchoring failed; will try again',
      );
      return 0;
    }
    for (const result of results) {
      if (result.status === 'broken') {
        this.options.logger.error(
          {
            module: 'poller',
            action: 'anchor',
            status: 'broken',
            tenant_id: result.tenant_id,
            chain_seq: result.problem.chain_seq,
            problem: result.problem.kind,
          },
          `audit chain of ${result.tenant_id} does not verify, not anchored: ${result.problem.message}; run warden audit verify`,
        );
      }
    }
    return results.filter((r) => r.status === 'anchored').length;
  }
}
