/**
 * One writer per workspace: a Redlock lock (extended while the holder works) plus a fencing token from Postgres.
 * Redlock alone cannot stop a holder that was paused past its TTL from writing after someone else took over;
 * the token can, because every write checks it in Postgres first (see `assertFenceToken`).
 */
import {
  acquireFenceToken,
  assertFenceToken,
  extendJournalLeases,
  type Db,
  type QueryExecutor,
} from '@warden/db';
import type { Logger } from '@warden/observability';
import type { Lock, createRedlock } from '@warden/queue';
import { sleep } from './concurrency.js';

type Redlock = ReturnType<typeof createRedlock>;

export interface WorkspaceLocksOptions {
  redlock: Redlock;
  db: Db;
  /** Prefix of the lock keys (the queue prefix), so installs sharing a Redis do not share locks. */
  prefix: string;
  /** Lock time-to-live; the lock is extended every third of it. */
  ttlMs: number;
  /** How long taking a fencing token waits for a holder that is mid-write. */
  fenceWaitMs: number;
  executorId: string;
  logger: Logger;
  /**
   * Keep extending held locks. Only tests turn this off, to play a holder that stalls past its TTL.
   * @defaultValue `true`
   */
  extendLocks?: boolean;
}

export interface LockOwner {
  tenantId?: string;
  changesetId?: string;
}

/** Acquires workspace locks with their fencing tokens. */
export class WorkspaceLocks {
  constructor(private readonly options: WorkspaceLocksOptions) {}

  lockKey(workspace: string): string {
    return `${this.options.prefix}:lock:executor:workspace:${workspace}`;
  }

  /** How long a journal's lease lasts past each extension: two lock lifetimes. */
  get leaseMs(): number {
    return this.options.ttlMs * 2;
  }

  /**
   * Takes the workspace, waiting up to `waitMs` for another holder; undefined when it stayed busy. The returned
   * holder carries a fresh fencing token, newer than any earlier holder's.
   */
  async acquire(workspace: string, owner: LockOwner, waitMs: number): Promise<HeldWorkspace | undefined> {
    const { redlock, ttlMs } = this.options;
    const deadline = Date.now() + waitMs;
    for (;;) {
      let lock: Lock | undefined;
      try {
        lock = await redlock.acquire([this.lockKey(workspace)], ttlMs);
      } catch {
        lock = undefined;
      }
      if (lock) {
        try {
          const token = await acquireFenceToken(this.options.db, {
            workspace,
            holder: this.options.executorId,
            lockTimeoutMs: this.options.fenceWaitMs,
            ...(owner.tenantId ? { tenantId: owner.tenantId } : {}),
            ...(owner.changesetId ? { changesetId: owner.changesetId } : {}),
          });
          return new HeldWorkspace(workspace, token, lock, this.options);
        } catch (error) {
          await lock.release().catch(() => {});
          // 55P03: a stale holder is still mid-write under the previous token; it finishes, then we retry.
          if ((error as { code?: string }).code !== '55P03') throw error;
        }
      }
      if (Date.now() >= deadline) return undefined;
      await sleep(Math.min(100 + Math.random() * 200, Math.max(0, deadline - Date.now())));
    }
  }
}

/** A held workspace: its fencing token, the lock being extended, and the journals whose lease goes with it. */
export class HeldWorkspace {
  private lostReason: string | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly journals = new Set<string>();
  private released = false;

  constructor(
    readonly workspace: string,
    /** The fencing token: every write checks it is still the newest. */
    readonly token: string,
    private lock: Lock,
    private readonly options: WorkspaceLocksOptions,
  ) {
    if (options.extendLocks !== false) {
      this.timer = setInterval(() => void this.extend(), Math.max(200, Math.floor(options.ttlMs / 3)));
      this.timer.unref();
    }
  }

  /** Set when extending the lock failed: another executor may hold the workspace now. */
  get lost(): string | undefined {
    return this.lostReason;
  }

  /** Keeps `journalId`'s lease alive while the workspace is held, so no one recovers it from under us. */
  track(journalId: string): void {
    this.journals.add(journalId);
  }

  untrack(journalId: string): void {
    this.journals.delete(journalId);
  }

  /** Throws StaleLockError unless this holder's token is still the newest; run it in the transaction that covers a write. */
  assertFence(trx: QueryExecutor): Promise<void> {
    return assertFenceToken(trx, this.workspace, this.token);
  }

  leaseUntil(): Date {
    return new Date(Date.now() + this.options.ttlMs * 2);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.timer) clearInterval(this.timer);
    await this.lock
      .release()
      .catch((error: unknown) =>
        this.options.logger.warn(
          { module: 'lock', action: 'release', status: 'error', workspace: this.workspace, err: error },
          'could not release the workspace lock; it expires on its own',
        ),
      );
  }

  private async extend(): Promise<void> {
    if (this.released || this.lostReason) return;
    try {
      this.lock = await this.lock.extend(this.options.ttlMs);
      await extendJournalLeases(this.options.db, [...this.journals], this.leaseUntil());
    } catch (error) {
      if (this.released) return;
      this.lostReason = `could not extend the lock on workspace "${this.workspace}": ${(error as Error).message}`;
      if (this.timer) clearInterval(this.timer);
      this.options.logger.error(
        {
          module: 'lock',
          action: 'extend',
          status: 'lost',
          workspace: this.workspace,
          fence_token: this.token,
          err: error,
        },
        this.lostReason,
      );
    }
  }
}
