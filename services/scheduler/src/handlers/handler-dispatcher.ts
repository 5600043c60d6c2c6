/**
 * Hands handler calls to their targets once the transaction that recorded them has committed: a job on the
 * tenant's handler queue (served by an SDK trigger worker, which reports on `cron-results`), a `scan` job on
 * `lead-scans` (the lead miner runs it and reports the same way), or an HTTP call made here whose outcome is
 * fed straight back to the engine. Nothing here decides anything: a lost dispatch is caught by the call's
 * deadline.
 */
import { Queue } from 'bullmq';
// A server or a cluster connection (REDIS_URL may name a Redis Cluster).
import type { RedisConnection as Redis } from '@warden/queue';
import type { HandlerJob, HandlerOutcome, Target } from '@warden/domain';
import { withSpan, type Logger } from '@warden/observability';
import {
  QUEUE_NAMES,
  leadScanCallJobId,
  queueKeyPrefix,
  queueTelemetry,
  triggerHandlerQueueName,
  type JobInput,
  type WardenQueues,
} from '@warden/queue';
import type { HttpHandlerClient } from './http-handler-client.js';

export interface DispatchRequest {
  tenant_id: string;
  target: Target;
  job: HandlerJob;
  deadline: Date;
}

export interface HandlerDispatcherOptions {
  connection: Redis;
  /** Warden's own queues: lead-scan calls become `scan` jobs on `lead-scans`. */
  queues: WardenQueues;
  /** The installation's key prefix (on a Redis Cluster each handler queue gets its own hash tag). @defaultValue `warden` */
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
    // The handler calls' span: a handler job carries its context to the agent's worker, an HTTP call its
    // `traceparent` header.
    await withSpan(
      'scheduler.handler_calls',
      {
        attributes: {
          'warden.execution_ids': requests.map((r) => r.job.execution_id),
          'warden.attempt_ids': requests.map((r) => r.job.attempt_id),
        },
      },
      () => this.send(requests),
    );
  }

  private async send(requests: readonly DispatchRequest[]): Promise<void> {
    const byQueue = new Map<string, DispatchRequest[]>();
    const leadScans: Array<{ payload: JobInput<'lead-scans', 'scan'>; options: { jobId: string } }> = [];
    for (const request of requests) {
      if ('queue' in request.target) {
        const name = triggerHandlerQueueName(request.tenant_id, request.target.queue);
        byQueue.set(name, [...(byQueue.get(name) ?? []), request]);
      } else if ('lead_scan' in request.target) {
        leadScans.push(leadScanJob(request, request.target.lead_scan.window));
      } else {
        this.callHttp(request);
      }
    }
    await Promise.all([
      ...(leadScans.length > 0
        ? [this.options.queues.enqueueBulk(QUEUE_NAMES.leadScans, 'scan', leadScans)]
        : []),
      ...[...byQueue.entries()].map(([name, batch]) =>
        this.queue(name).addBulk(
          // The job id is the attempt id: re-dispatching the same call (a repaired duplicate fire) adds nothing.
          batch.map((r) => ({
            name: r.job.context.role,
            data: r.job,
            opts: { jobId: r.job.attempt_id, attempts: 1, ...KEEP },
          })),
        ),
      ),
    ]);
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
      const telemetry = queueTelemetry();
      queue = new Queue(name, {
        connection: this.options.connection,
        ...(telemetry ? { telemetry } : {}),
        prefix: queueKeyPrefix(this.options.prefix ?? 'warden', name, this.options.connection),
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

/**
 * The `scan` job of a lead-scan call: the trigger's tenant (never another), the target's window, and the call
 * to report to. Its id derives from the attempt id, so re-dispatching the call adds nothing.
 */
function leadScanJob(
  request: DispatchRequest,
  window: string,
): { payload: JobInput<'lead-scans', 'scan'>; options: { jobId: string } } {
  const { job } = request;
  return {
    payload: {
      tenant_id: request.tenant_id,
      window,
      dry_run: false,
      force: false,
      trigger: 'schedule',
      requested_by: `trigger:${job.context.event_name}`,
      trigger_call: { execution_id: job.execution_id, attempt_id: job.attempt_id },
    },
    options: { jobId: leadScanCallJobId(job.attempt_id) },
  };
}
