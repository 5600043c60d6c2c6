import { Queue, type JobsOptions } from 'bullmq';
import { parseOrThrow } from '@warden/domain';
import { jobDefinition, type JobInput, type JobName } from './catalog.js';
import { queueKeyPrefix, type QueueName } from './names.js';
import type { RedisConnection } from './redis.js';
import { queueTelemetry } from './telemetry.js';

export interface WardenQueuesOptions {
  /** The Redis client every queue shares (for request paths, one made with role `producer`). */
  connection: RedisConnection;
  /** The installation's key prefix (on a Redis Cluster, see `queueKeyPrefix`). @defaultValue `warden` */
  prefix?: string;
}

export interface EnqueueOptions extends JobsOptions {
  /** Give up waiting for Redis after this long and reject. @defaultValue no limit */
  timeoutMs?: number;
}

export interface EnqueueBulkOptions {
  /** Give up waiting for Redis after this long and reject. @defaultValue no limit */
  timeoutMs?: number;
  /**
   * Validate payloads against the catalog before they leave the process. Only a producer whose payloads are
   * already parsed by the same schemas (the ingest path) should turn this off. @defaultValue `true`
   */
  validate?: boolean;
}

/**
 * The producer side of every queue: one lazily created BullMQ `Queue` per name, a typed `enqueue` that
 * validates the payload against the job catalog before it leaves the process, and one `close()`.
 *
 * @example
 * const queues = new WardenQueues({ connection: createRedis(url, 'producer') });
 * await queues.enqueue('supervisor-events', 'event', event, { jobId: eventJobId(event.tenant_id, event.event_id) });
 */
export class WardenQueues {
  readonly prefix: string;
  private readonly connection: RedisConnection;
  private readonly queues = new Map<QueueName, Queue>();

  constructor(options: WardenQueuesOptions) {
    this.connection = options.connection;
    this.prefix = options.prefix ?? 'warden';
  }

  /** The BullMQ queue (created on first use); for Bull Board, metrics and tests. */
  get(name: QueueName): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      // With tracing on, each add is a producer span whose context travels with the job (see telemetry.ts).
      const telemetry = queueTelemetry();
      queue = new Queue(name, {
        connection: this.connection,
        prefix: this.keyPrefix(name),
        ...(telemetry ? { telemetry } : {}),
      });
      queue.on('error', () => {});
      this.queues.set(name, queue);
      // A queue whose connection set-up failed stays failed: BullMQ keeps the rejected set-up and every later
      // call on the queue rejects with it. That happens on a Redis Cluster still starting up (BullMQ takes the
      // cluster's `connect` state for ready and its first command is refused: "Cluster isn't ready"), so such a
      // queue is dropped, and the next call opens a new one instead of every enqueue failing until a restart.
      const opened = queue;
      opened.waitUntilReady().catch(() => {
        if (this.queues.get(name) !== opened) return;
        this.queues.delete(name);
        void opened.close().catch(() => {});
      });
    }
    return queue;
  }

  /**
   * The BullMQ `prefix` of queue `name` (any queue on this connection, e.g. a trigger's handler queue): the
   * installation's prefix, with a hash tag of the queue's own on a Redis Cluster.
   */
  keyPrefix(name: string): string {
    return queueKeyPrefix(this.prefix, name, this.connection);
  }

  /** The connection the queues share (Bull Board opens further queues on it). */
  get redis(): RedisConnection {
    return this.connection;
  }

  async enqueue<Q extends QueueName, N extends JobName<Q>>(
    queue: Q,
    name: N,
    payload: JobInput<Q, N>,
    options: EnqueueOptions = {},
  ): Promise<string | undefined> {
    const [id] = await this.enqueueBulk(
      queue,
      name,
      [{ payload, options }],
      options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs },
    );
    return id;
  }

  /** Adds several jobs of one kind in one round trip. Returns their ids in order. */
  async enqueueBulk<Q extends QueueName, N extends JobName<Q>>(
    queue: Q,
    name: N,
    jobs: ReadonlyArray<{ payload: JobInput<Q, N>; options?: JobsOptions }>,
    bulkOptions: EnqueueBulkOptions = {},
  ): Promise<Array<string | undefined>> {
    const { timeoutMs, validate = true } = bulkOptions;
    const definition = jobDefinition(queue, name);
    if (!definition) throw new Error(`queue ${queue} has no job named ${name} in the catalog`);
    const bulk = jobs.map(({ payload, options }) => ({
      name,
      data: validate ? parseOrThrow(definition.schema, payload, `job ${queue}/${name}`) : payload,
      opts: { ...definition.defaultOptions, ...options },
    }));
    // One job goes through `add`: `addBulk` builds an ioredis pipeline, which copies every BullMQ script onto
    // itself — for a single job most of the client-side CPU of the add (profiled on the ingest path).
    const [single] = bulk;
    const adding =
      bulk.length === 1 && single
        ? this.get(queue)
            .add(single.name, single.data, single.opts)
            .then((job) => [job])
        : this.get(queue).addBulk(bulk);
    const added =
      timeoutMs === undefined ? await adding : await withTimeout(adding, timeoutMs, `enqueue on ${queue}`);
    return added.map((job) => job.id);
  }

  /**
   * Jobs of `queue` not yet taken by a worker (waiting, also while paused, or prioritized): how far behind its consumers are.
   * A producer that can choose when to add (a poller) waits while this is high.
   */
  async countQueued(queue: QueueName, options: { timeoutMs?: number } = {}): Promise<number> {
    const counting = this.get(queue).getJobCounts('waiting', 'prioritized');
    const counts =
      options.timeoutMs === undefined
        ? await counting
        : await withTimeout(counting, options.timeoutMs, `count on ${queue}`);
    return Object.values(counts).reduce((sum, n) => sum + n, 0);
  }

  /** Closes every queue this object opened. The shared connection stays with its owner. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()].map((queue) => queue.close()));
    this.queues.clear();
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  // The losing promise may still reject later; keep that from becoming an unhandled rejection.
  promise.catch(() => {});
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
