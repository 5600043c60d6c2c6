/**
 * The executor's safety net, run every few seconds: re-enqueues executable change sets whose job was lost (Redis
 * is not the record; Postgres is), recovers journals whose holder stopped renewing its lease, and prunes
 * idempotency records and backups past their retention.
 */
import {
  deleteExpiredIdempotencyKeys,
  findChangeSetsToEnqueue,
  markChangeSetsQueued,
  pruneJournalBackups,
  type Db,
} from '@warden/db';
import type { Logger } from '@warden/observability';
import { QUEUE_NAMES, changesetJobId, type WardenQueues } from '@warden/queue';
import { PeriodicTask } from '@warden/runtime';
import type { JournalRecovery } from './journal-recovery.js';

export interface ExecutorPollerOptions {
  db: Db;
  queues: WardenQueues;
  recovery: JournalRecovery;
  logger: Logger;
  /** Pause between the end of one poll and the start of the next. */
  intervalMs: number;
  /** A change set queued longer ago than this and not started is enqueued again. */
  requeueGraceMs: number;
  /** An execution untouched this long with nothing in flight (no journal) is enqueued again. */
  stalledAfterMs: number;
  backupRetentionDays: number;
  /** @defaultValue `100` */
  batchSize?: number;
}

export interface PollReport {
  requeued: number;
  recovered: number;
  expiredKeys: number;
  prunedBackups: number;
}

// A job in one of these states will still run; re-adding it would be a no-op or a duplicate.
const LIVE_JOB_STATES = new Set(['waiting', 'delayed', 'active', 'prioritized', 'waiting-children']);

export class ExecutorPoller {
  private readonly task: PeriodicTask;

  constructor(private readonly options: ExecutorPollerOptions) {
    this.task = new PeriodicTask({
      name: 'poller',
      intervalMs: options.intervalMs,
      run: () => this.pollOnce(),
      logger: options.logger,
    });
  }

  /** Polls every `intervalMs`, the first time `intervalMs` from now. */
  start(): void {
    this.task.start();
  }

  /** Cancels the next poll and waits for the one in flight. */
  stop(): Promise<void> {
    return this.task.stop();
  }

  async pollOnce(): Promise<PollReport> {
    const { db, logger } = this.options;
    const requeued = await this.requeueLost();
    const recovered = await this.options.recovery.recoverAll({ onlyExpiredLeases: true, lockWaitMs: 0 });
    const expiredKeys = await deleteExpiredIdempotencyKeys(db);
    const prunedBackups = await pruneJournalBackups(
      db,
      new Date(Date.now() - this.options.backupRetentionDays * 86_400_000),
    );
    const report = { requeued, recovered, expiredKeys, prunedBackups };
    if (requeued + recovered > 0)
      logger.info({ module: 'poller', action: 'poll', status: 'ok', ...report }, 'executor poll did work');
    return report;
  }

  private async requeueLost(): Promise<number> {
    const { db, queues } = this.options;
    return db.transaction().execute(async (trx) => {
      const keys = await findChangeSetsToEnqueue(trx, {
        queuedBefore: new Date(Date.now() - this.options.requeueGraceMs),
        stalledBefore: new Date(Date.now() - this.options.stalledAfterMs),
        limit: this.options.batchSize ?? 100,
      });
      if (keys.length === 0) return 0;
      const queue = queues.get(QUEUE_NAMES.changesets);
      for (const key of keys) {
        const jobId = changesetJobId(key.tenant_id, key.changeset_id);
        const existing = await queue.getJob(jobId);
        if (existing) {
          if (LIVE_JOB_STATES.has(await existing.getState())) continue;
          // A finished job keeps its id until BullMQ removes it; a new run needs the id free.
          await existing.remove().catch(() => {});
        }
        await queues.enqueue(QUEUE_NAMES.changesets, 'execute', key, { jobId });
      }
      await markChangeSetsQueued(trx, keys);
      return keys.length;
    });
  }
}
