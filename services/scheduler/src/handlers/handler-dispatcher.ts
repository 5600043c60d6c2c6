/**
 * Hands handler calls to their targets once the transaction that recorded them has committed: a job on the
 * tenant's handler queue (served by an SDK trigger worker, which reports on `cron-results`), or an HTTP call
 * made here whose outcome is fed straight back to the engine. Nothing here decides anything: a lost dispatch
 * is caught by the call's deadline.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { HandlerJob, HandlerOutcome, Target } from '@warden/domain';
import type { Logger } from '@warden/observability';
import { triggerHandlerQueueName } from '@warden/queue';
import type { HttpHandlerClient } from './http-handler-client.js';

export interface DispatchRequest {
  tenant_id: string;
  target: Target;
  job: HandlerJob;
  deadline: Date;
}

export interface HandlerDispatcherOptions {
  connection: Redis;
  /** BullMQ key prefix. @defaultValue `warden` */
  prefix?: string;
  http: HttpHandlerClient;
  logger: Logger;
  /** Where an HTTP call's outcome goes (the engine records it). */
  onHttpOutcome: (job: HandlerJob, outcome: HandlerOutcome) => Promise<void>;
}

/** How long a finished handler job stays visible in Bull Board. */
const KEEP = { removeOnComplete: { age: 3600, count: 1000 }, removeOnFail: { age: 24 * 3600 } };

export class HandlerDispatcher {
  private readonly queues = new Map<string, Queue>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly options: HandlerDispatcherOptions) {}

  /** Sends each call on its way; queue jobs are added before this resolves, HTTP calls run on in the background. */
  async dispatch(requests: readonly DispatchRequest[]): Promise<void> {
    const byQueue = new Map<string, DispatchRequest[]>();
    for (const request of requests) {
      if ('queue' in request.target) {
        const name = triggerHandlerQueueName(request.tenant_id, request.target.queue);
        byQueue.set(name, [...(byQueue.get(name) ?? []), request]);
      } else {
        this.callHttp(request);
      }
    }
    await Promise.all(
      [...byQueue.entries()].map(([name, batch]) =>
        this.queue(name).addBulk(
          // The job id is the attempt id: re-dispatching the same call (a repaired duplicate fire) adds nothing.
          batch.map((r) => ({
            name: r.job.context.role,
            data: r.job,
            opts: { jobId: r.job.attempt_id, attempts: 1, ...KEEP },
          })),
        ),
      ),
    );
  }

  /** HTTP calls still running (for a graceful stop). */
  get pendingHttpCalls(): number {
    return this.inFlight.size;
  }

  /** Waits up to `timeoutMs` for HTTP calls in flight (their deadlines cover the rest), then closes the queues. */
  async close(timeoutMs: number): Promise<void> {
    if (this.inFlight.size > 0) {
      await Promise.race([
        Promise.allSettled([...this.inFlight]),
        new Promise((resolve) => setTimeout(resolve, timeoutMs).unref()),
      ]);
    }
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }

  private queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, {
        connection: this.options.connection,
        prefix: this.options.prefix ?? 'warden',
      });
      queue.on('error', (error) =>
        this.options.logger.warn({ module: 'dispatcher', queue: name, err: error }, 'handler queue error'),
      );
      this.queues.set(name, queue);
    }
    return queue;
  }

  private callHttp(request: DispatchRequest): void {
    if (!('url' in request.target)) return;
    const target = request.target;
    const running = (async () => {
      const outcome = await this.options.http.call(target, request.job, request.deadline);
      await this.options.onHttpOutcome(request.job, outcome);
    })()
      .catch((error) =>
        // The outcome could not be recorded (Postgres away): the call's deadline settles the run later.
        this.options.logger.warn(
          {
            module: 'dispatcher',
            action: 'http_call',
            status: 'error',
            execution_id: request.job.execution_id,
            err: error,
          },
          'could not record an HTTP handler outcome',
        ),
      )
      .finally(() => this.inFlight.delete(running));
    this.inFlight.add(running);
  }
}
