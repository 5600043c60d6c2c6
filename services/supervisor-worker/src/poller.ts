import {
  anchorAuditChains,
  deleteCompletedInboxRows,
  releaseExpiredClaims,
  takeRowsToReenqueue,
  type Db,
  type InboxRow,
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
  /**
   * Rows re-enqueued by the first take of a pass. A take that comes back full doubles the next one (up to
   * `maxBatchSize`), one that comes back short halves it (down to this). @defaultValue `50`
   */
  batchSize: number;
  /** Largest take while a backlog drains. @defaultValue `1000` */
  maxBatchSize?: number;
  /**
   * Jobs the supervisor queue may hold not yet taken before the poller adds more: it feeds a backlog as fast
   * as the supervisor decides, no faster, so rows do not sit in the queue past `graceMs` and get enqueued
   * twice. @defaultValue `4 × maxBatchSize`
   */
  maxQueuedJobs?: number;
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
  /** The pass ended with rows still due (its time ran out while the queue was full): the next starts at once. */
  backlog: boolean;
}

/** How long one pass keeps draining a backlog before it ends (and the next, started at once, releases claims). */
const DRAIN_PASS_MS = 5_000;
/** How long the poller waits for the supervisor to take jobs when the queue holds `maxQueuedJobs`. */
const QUEUE_FULL_WAIT_MS = 50;
const REDIS_TIMEOUT_MS = 5_000;

/**
 * The safety net under the queue: releases claims whose processor died, re-enqueues rows the queue lost
 * (or never got, when Redis was down at ingest) and, once a day, deletes old completed rows. Several
 * replicas may run it: every step takes its rows with SKIP LOCKED.
 *
 * After an outage of Redis the inbox may hold a large backlog of events accepted meanwhile. A pass drains it
 * in takes that grow while they come back full (`batchSize` doubling up to `maxBatchSize`), each re-enqueued
 * with one `addBulk`, as fast as the supervisor takes the jobs (at most `maxQueuedJobs` waiting); a pass that
 * runs out of time with rows still due starts the next at once. No event is decided twice: the decision
 * claims its inbox row in Postgres, whatever delivered it.
 */
export class InboxPoller {
  private readonly periodic: PeriodicTask;
  private lastCleanup = 0;
  private lastAnchor = 0;
  private take: number;
  private stopping = false;
  /** When the drain in progress began (its passes ended with a backlog); none between drains. */
  private drainingSince: Date | undefined;

  constructor(private readonly options: PollerOptions) {
    this.periodic = new PeriodicTask({
      name: 'poller',
      intervalMs: options.intervalMs,
      run: async () => {
        if ((await this.pollOnce()).backlog) this.periodic.runSoon();
      },
      logger: options.logger,
    });
    this.take = options.batchSize;
  }

  /** Starts a pass now rather than after the interval: e.g. Redis is back, and events may wait in the inbox. */
  drainSoon(): void {
    this.periodic.runSoon();
  }

  /** Polls every `intervalMs` (after each pass ends) until {@link stop}. */
  start(): void {
    this.stopping = false;
    this.periodic.start();
  }

  /** Cancels the next pass and waits for the one in flight (which stops draining at its next take). */
  async stop(): Promise<void> {
    this.stopping = true;
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

    const { reenqueued, backlog } = await this.reenqueueDue(now);
    if (reenqueued > 0) this.options.metrics?.reenqueued.inc(reenqueued);

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
      reenqueued,
      deleted,
      anchored,
      backlog,
    };
    if (result.released + result.dead + result.reenqueued + result.deleted + result.anchored > 0) {
      logger.info({ module: 'poller', action: 'poll', status: 'ok', ...result }, 'poller pass');
    }
    return result;
  }

  /**
   * Re-enqueues the rows that are due, in takes that adapt to the backlog, while the queue has room; stops when
   * a take comes back short (nothing more is due), the service stops, or the pass has run DRAIN_PASS_MS.
   */
  private async reenqueueDue(now: number): Promise<{ reenqueued: number; backlog: boolean }> {
    const drainStart = this.drainingSince ?? new Date();
    this.drainingSince = undefined;
    const result = await this.drain(now, drainStart);
    // Only a drain that continues in the next pass keeps its start; one that failed or finished starts afresh.
    if (result.backlog) this.drainingSince = drainStart;
    return result;
  }

  private async drain(now: number, drainStart: Date): Promise<{ reenqueued: number; backlog: boolean }> {
    const { db, queues, graceMs, batchSize } = this.options;
    const maxBatchSize = Math.max(batchSize, this.options.maxBatchSize ?? 1000);
    const maxQueued = this.options.maxQueuedJobs ?? 4 * maxBatchSize;
    const deadline = performance.now() + DRAIN_PASS_MS;
    // A row this drain enqueued is not taken again by it, however many passes it lasts: while the workers are
    // behind, its job is still waiting in the queue, not lost (a job lost meanwhile is found once the drain
    // ends). Postgres stamps the rows with its own clock: a skew only shifts this bound, never loses a row.
    const passStart = drainStart;
    let reenqueued = 0;
    for (;;) {
      if (this.stopping) return { reenqueued, backlog: false };
      // Unknown when Redis is away: the take goes ahead and its enqueue fails the pass (logged); the rows it
      // marked are due again `graceMs` later, as any row whose enqueue was lost.
      const queued = await queues
        .countQueued(QUEUE_NAMES.supervisorEvents, { timeoutMs: REDIS_TIMEOUT_MS })
        .catch(() => undefined);
      const room = queued === undefined ? this.take : maxQueued - queued;
      if (room < Math.min(this.take, batchSize)) {
        // The supervisor is behind already: more jobs now would only wait (and outlive the grace period).
        if (performance.now() > deadline) return { reenqueued, backlog: true };
        await new Promise((resolve) => setTimeout(resolve, QUEUE_FULL_WAIT_MS));
        continue;
      }
      const limit = Math.min(this.take, room);
      const due = await takeRowsToReenqueue(db, graceMs, limit, { enqueuedBefore: passStart });
      if (due.length > 0) await this.enqueue(due, now);
      reenqueued += due.length;
      if (due.length < limit) {
        this.take = Math.max(batchSize, Math.floor(this.take / 2));
        return { reenqueued, backlog: false };
      }
      if (limit === this.take) this.take = Math.min(maxBatchSize, this.take * 2);
      if (performance.now() > deadline) return { reenqueued, backlog: true };
    }
  }

  private async enqueue(due: readonly InboxRow[], now: number): Promise<void> {
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
      { timeoutMs: REDIS_TIMEOUT_MS },
    );
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
