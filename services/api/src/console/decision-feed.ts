/**
 * Fans the supervisor's decision stream (a Redis stream, `decisionStreamKey`) out to the console's open
 * server-sent-event connections, each filtered to its tenant. One blocking reader per API process, started with
 * the first listener; a reader that loses Redis retries, and the pages keep working without live updates.
 */
// A server or a cluster connection (REDIS_URL may name a Redis Cluster).
import type { RedisConnection as Redis } from '@warden/queue';
import type { Logger } from '@warden/observability';
import { decisionStreamKey } from '@warden/queue';

export interface DecisionNotice {
  tenant_id: string;
  task_id: string;
  decision_type: string;
}

type Listener = (notice: DecisionNotice) => void;

/** How far back the reader starts, covering its own connection time and a small clock skew with Redis. */
const START_BACK_MS = 5000;

export interface DecisionFeedOptions {
  /** Makes the reader's own connection (blocking reads need one that nothing else uses). */
  connect: () => Redis;
  prefix: string;
  logger: Logger;
  /** How long one XREAD blocks. @defaultValue `5000` */
  blockMs?: number;
}

export class DecisionFeed {
  private readonly listeners = new Map<string, Set<Listener>>();
  private redis: Redis | undefined;
  private running = false;
  private closed = false;
  private readonly closers = new Set<() => void>();

  constructor(private readonly options: DecisionFeedOptions) {}

  /**
   * Calls `listener` for each decision of `tenantId` from now on, and `onClose` when the feed closes (the API is
   * stopping: open streams end rather than hold the shutdown); returns the unsubscribe function.
   */
  subscribe(tenantId: string, listener: Listener, onClose?: () => void): () => void {
    if (onClose) this.closers.add(onClose);
    let set = this.listeners.get(tenantId);
    if (!set) this.listeners.set(tenantId, (set = new Set()));
    set.add(listener);
    if (!this.running && !this.closed) void this.run();
    return () => {
      if (onClose) this.closers.delete(onClose);
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(tenantId);
    };
  }

  private async run(): Promise<void> {
    this.running = true;
    const key = decisionStreamKey(this.options.prefix);
    const log = this.options.logger.child({ module: 'console-feed' });
    // From a little before now rather than '$': a decision published while the connection is still being made
    // is not lost (stream ids are the Redis clock's milliseconds; a decision seen twice only refreshes twice).
    let lastId = `${Date.now() - START_BACK_MS}-0`;
    while (!this.closed) {
      try {
        this.redis ??= this.options.connect();
        const reply = (await this.redis.xread(
          'BLOCK',
          this.options.blockMs ?? 5000,
          'STREAMS',
          key,
          lastId,
        )) as Array<[string, Array<[string, string[]]>]> | null;
        for (const [, entries] of reply ?? [])
          for (const [id, fields] of entries) {
            lastId = id;
            this.dispatch(fields);
          }
      } catch (error) {
        if (this.closed) break;
        log.warn({ action: 'read', status: 'error', err: error }, 'decision stream read failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, 1000).unref());
      }
    }
    this.running = false;
  }

  private dispatch(fields: string[]): void {
    const record: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
    const listeners = record.tenant_id ? this.listeners.get(record.tenant_id) : undefined;
    if (!listeners) return;
    const notice: DecisionNotice = {
      tenant_id: record.tenant_id!,
      task_id: record.task_id ?? '',
      decision_type: record.decision_type ?? '',
    };
    for (const listener of listeners) listener(notice);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const closer of this.closers) closer();
    this.closers.clear();
    this.redis?.disconnect();
    this.redis = undefined;
  }
}
