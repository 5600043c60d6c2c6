/**
 * Wakes requests that wait for their events' decisions (`Prefer: wait`) when those decisions are published on
 * the decision stream. One blocking reader (`XREAD BLOCK` on a dedicated connection) serves every waiting
 * request, and runs only while some request waits: an API with no waiters reads nothing.
 *
 * The race with a decision committed before the request started to listen is closed by order: a request
 * registers, waits until the reader has a position in the stream (`ready`), and only then reads Postgres.
 * A decision published before that position was committed before it too (the supervisor publishes after
 * commit), so the read sees it; one published after it reaches the reader.
 */
// A server or a cluster connection (REDIS_URL may name a Redis Cluster).
import type { RedisConnection as Redis } from '@warden/queue';
import type { Logger } from '@warden/observability';

export interface DecisionWaiterOptions {
  /** A connection for this reader alone: a blocking read holds it. */
  redis: Redis;
  /** The decision stream (`decisionStreamKey(prefix)`). */
  streamKey: string;
  logger: Logger;
  /** How long one blocking read waits before the reader checks whether anyone still waits. @defaultValue `2000` */
  blockMs?: number;
  /** Entries taken per read. @defaultValue `1000` */
  batchSize?: number;
}

/** One request's registration: which of its events were decided since, as the stream says. */
export interface DecisionWatch {
  /** Resolves once the reader has a position in the stream; never rejects (Redis away: it stays pending). */
  readonly ready: Promise<void>;
  /**
   * The reader had its position already when this watch registered: every decision published since the
   * registration reaches the watch, so events written after it need no first read of Postgres.
   */
  readonly positioned: boolean;
  /** Resolves when every event not yet `settle`d has been published as decided. */
  allPublished(): Promise<void>;
  /** Events already known to be decided (read from Postgres): not waited for. */
  settle(eventIds: Iterable<string>): void;
  /** Stops watching; always call it (finally). */
  close(): void;
}

interface Registration {
  tenantId: string;
  pending: Set<string>;
  wake: () => void;
}

/** The blocking reader while it runs: `ready` once it has its position in the stream. */
interface Reader {
  ready: Promise<void>;
  positioned: boolean;
}

const keyOf = (tenantId: string, eventId: string) => `${tenantId}\u0000${eventId}`;

export class DecisionWaiter {
  private readonly byEvent = new Map<string, Set<Registration>>();
  private registrations = 0;
  private reader: Reader | undefined;
  private stopped = false;
  private readonly blockMs: number;
  private readonly batchSize: number;

  constructor(private readonly options: DecisionWaiterOptions) {
    this.blockMs = options.blockMs ?? 2000;
    this.batchSize = options.batchSize ?? 1000;
  }

  /** Registers a request waiting for the decisions on `eventIds` of `tenantId`. */
  watch(tenantId: string, eventIds: readonly string[]): DecisionWatch {
    let wake: () => void = () => {};
    const published = new Promise<void>((resolve) => (wake = resolve));
    const registration: Registration = { tenantId, pending: new Set(eventIds), wake: () => wake() };
    for (const eventId of registration.pending) this.index(registration, eventId, 'add');
    this.registrations += 1;
    const reader = this.ensureReader();
    const positioned = reader.positioned;
    let closed = false;
    const check = () => {
      if (registration.pending.size === 0) registration.wake();
    };
    return {
      ready: reader.ready,
      positioned,
      allPublished: () => {
        check();
        return published;
      },
      settle: (ids) => {
        for (const id of ids) if (registration.pending.delete(id)) this.index(registration, id, 'delete');
        check();
      },
      close: () => {
        if (closed) return;
        closed = true;
        for (const id of registration.pending) this.index(registration, id, 'delete');
        registration.pending.clear();
        this.registrations -= 1;
      },
    };
  }

  /** Stops the reader; waiting requests run into their deadline. The connection is the caller's to close. */
  stop(): void {
    this.stopped = true;
  }

  private index(registration: Registration, eventId: string, op: 'add' | 'delete'): void {
    const key = keyOf(registration.tenantId, eventId);
    let set = this.byEvent.get(key);
    if (op === 'add') {
      if (!set) this.byEvent.set(key, (set = new Set()));
      set.add(registration);
    } else if (set) {
      set.delete(registration);
      if (set.size === 0) this.byEvent.delete(key);
    }
  }

  private ensureReader(): Reader {
    if (this.reader) return this.reader;
    let resolve: () => void = () => {};
    const reader: Reader = { ready: new Promise<void>((r) => (resolve = r)), positioned: false };
    this.reader = reader;
    const positioned = () => {
      reader.positioned = true;
      resolve();
    };
    void this.read(positioned).finally(() => {
      if (this.reader === reader) this.reader = undefined;
    });
    return reader;
  }

  private get wanted(): boolean {
    return this.registrations > 0 && !this.stopped;
  }

  private async read(positioned: () => void): Promise<void> {
    const { redis, streamKey, logger } = this.options;
    let lastId: string | undefined;
    while (this.wanted && lastId === undefined) {
      try {
        const [latest] = await redis.xrevrange(streamKey, '+', '-', 'COUNT', 1);
        lastId = latest?.[0] ?? '0-0';
      } catch (error) {
        logger.warn({ module: 'decision-waiter', err: error }, 'cannot read the decision stream; retrying');
        await sleep(200);
      }
    }
    if (lastId === undefined) return;
    positioned();
    while (this.wanted) {
      let reply: Array<[string, Array<[string, string[]]>]> | null;
      try {
        reply = (await redis.xread(
          'COUNT',
          this.batchSize,
          'BLOCK',
          this.blockMs,
          'STREAMS',
          streamKey,
          lastId,
        )) as Array<[string, Array<[string, string[]]>]> | null;
      } catch (error) {
        if (!this.wanted) return;
        logger.warn(
          { module: 'decision-waiter', err: error },
          'reading the decision stream failed; retrying',
        );
        await sleep(200);
        continue;
      }
      for (const [, entries] of reply ?? []) {
        for (const [id, fields] of entries) {
          lastId = id;
          this.published(fields);
        }
      }
    }
  }

  private published(fields: string[]): void {
    let tenantId: string | undefined;
    let eventId: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'tenant_id') tenantId = fields[i + 1];
      else if (fields[i] === 'event_id') eventId = fields[i + 1];
    }
    if (tenantId === undefined || eventId === undefined) return;
    const registrations = this.byEvent.get(keyOf(tenantId, eventId));
    if (!registrations) return;
    this.byEvent.delete(keyOf(tenantId, eventId));
    for (const registration of registrations) {
      registration.pending.delete(eventId);
      if (registration.pending.size === 0) registration.wake();
    }
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
