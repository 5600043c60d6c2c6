/**
 * The notifier (docs/notifications.md): moves notifications from the outbox to the tenant's channels.
 *
 * - A periodic pass fans new outbox rows out into deliveries (one per subscribed channel) and enqueues them on
 *   the `notifications` queue — and enqueues again any delivery whose job was lost.
 * - A BullMQ worker sends each delivery, records every attempt in the delivery log (status, attempts, last
 *   error) and lets the queue retry with exponential backoff until `maxAttempts`; then the delivery is `failed`.
 *
 * Decisions never wait on any of this: the state change only wrote an outbox row in its own transaction.
 * Safe with several replicas: the fan-out takes rows `FOR UPDATE SKIP LOCKED`, jobs are keyed by delivery id,
 * and an attempt is recorded only on a delivery that is still pending.
 */
import type { Worker } from 'bullmq';
// A server or a cluster connection (REDIS_URL may name a Redis Cluster).
import type { RedisConnection as Redis } from '@warden/queue';
import {
  dispatchNotifications,
  findStrandedDeliveries,
  loadDeliveryForSend,
  markDeliveriesEnqueued,
  recordDeliveryAttempt,
  type Db,
} from '@warden/db';
import type { Logger } from '@warden/observability';
import { QUEUE_NAMES, createValidatedWorker, type WardenQueues } from '@warden/queue';
import { PeriodicTask, closeWorker, type EgressGuard } from '@warden/runtime';
import { sendToChannel } from './senders.js';

export interface NotifierOptions {
  db: Db;
  queues: WardenQueues;
  /** A connection made with role `worker`, for the BullMQ worker. */
  workerConnection: Redis;
  /** BullMQ key prefix. */
  prefix: string;
  logger: Logger;
  /** Pause between fan-out passes. @defaultValue `1000` */
  intervalMs?: number;
  /** Attempts per delivery before it is `failed`. @defaultValue `5` */
  maxAttempts?: number;
  /** The first retry's delay; each next one doubles. @defaultValue `2000` */
  backoffMs?: number;
  /** One request's time limit. @defaultValue `5000` */
  timeoutMs?: number;
  /** A pending delivery not enqueued for this long is enqueued again (its job was lost). @defaultValue `900000` */
  requeueAfterMs?: number;
  /** Deliveries sent at once. @defaultValue `8` */
  concurrency?: number;
  /** Where console links in messages point. */
  consoleBaseUrl: string;
  /** The egress policy deliveries obey (docs/scheduler.md, "Egress"). */
  egress: EgressGuard;
}

export class Notifier {
  private readonly pass: PeriodicTask;
  private worker: Worker | undefined;
  private readonly maxAttempts: number;

  constructor(private readonly options: NotifierOptions) {
    this.maxAttempts = options.maxAttempts ?? 5;
    this.pass = new PeriodicTask({
      name: 'notifier',
      intervalMs: options.intervalMs ?? 1000,
      logger: options.logger,
      run: () => this.dispatchOnce(),
    });
  }

  start(): void {
    const { logger } = this.options;
    this.worker = createValidatedWorker({
      queue: QUEUE_NAMES.notifications,
      connection: this.options.workerConnection,
      prefix: this.options.prefix,
      concurrency: this.options.concurrency ?? 8,
      logger,
      process: (payload) => this.deliver(payload.delivery_id),
    });
    this.pass.start();
  }

  async stop(): Promise<void> {
    await this.pass.stop();
    if (this.worker) await closeWorker(this.worker);
    this.worker = undefined;
  }

  /** One fan-out pass: new deliveries, and stranded ones, onto the queue. Returns how many were enqueued. */
  async dispatchOnce(): Promise<number> {
    const { db, queues } = this.options;
    const created = await dispatchNotifications(db);
    const stranded = await findStrandedDeliveries(db, {
      enqueuedBefore: new Date(Date.now() - (this.options.requeueAfterMs ?? 900_000)),
    });
    const ids = [...new Set([...created, ...stranded])];
    if (ids.length === 0) return 0;
    await queues.enqueueBulk(
      QUEUE_NAMES.notifications,
      'deliver',
      ids.map((id) => ({
        payload: { delivery_id: id },
        options: {
          // A first enqueue is keyed by the delivery; a re-enqueue of a lost job gets a fresh key.
          jobId: created.includes(id) ? id : `${id}-${Date.now()}`,
          attempts: this.maxAttempts,
          backoff: { type: 'exponential', delay: this.options.backoffMs ?? 2000 },
        },
      })),
    );
    await markDeliveriesEnqueued(db, ids);
    return ids.length;
  }

  /**
   * One attempt at one delivery. A failure that may pass is thrown, so the queue retries it after its backoff;
   * the last attempt, or an answer retrying cannot change (a 4xx, a redirect, a refused host), settles it as
   * `failed`. Every outcome is in the delivery log.
   */
  async deliver(deliveryId: string): Promise<string> {
    const { db, logger } = this.options;
    const found = await loadDeliveryForSend(db, deliveryId);
    if (!found || found.delivery.status !== 'pending') return 'skipped';
    const { channel, delivery, event } = found;
    const fields = {
      module: 'notifier',
      tenant_id: delivery.tenant_id,
      channel_id: channel.channel_id,
      delivery_id: deliveryId,
      event_type: event.event_type,
    };
    if (!channel.enabled) {
      await recordDeliveryAttempt(db, deliveryId, { status: 'cancelled', error: 'the channel was disabled' });
      return 'cancelled';
    }
    const result = await sendToChannel(channel, event, {
      timeoutMs: this.options.timeoutMs ?? 5000,
      consoleBaseUrl: this.options.consoleBaseUrl,
      egress: this.options.egress,
    });
    if (result.ok) {
      await recordDeliveryAttempt(db, deliveryId, { status: 'delivered', statusCode: result.statusCode });
      return 'delivered';
    }
    const last = !result.retryable || delivery.attempts + 1 >= this.maxAttempts;
    await recordDeliveryAttempt(db, deliveryId, {
      status: last ? 'failed' : 'pending',
      statusCode: result.statusCode,
      error: result.error,
    });
    logger.warn(
      {
        ...fields,
        action: 'deliver',
        status: last ? 'failed' : 'retry',
        attempt: delivery.attempts + 1,
        error: result.error,
      },
      last ? 'notification delivery failed; giving up' : 'notification delivery failed; will retry',
    );
    if (!last) throw new Error(result.error);
    return 'failed';
  }
}
