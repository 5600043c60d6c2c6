import { DelayedError, UnrecoverableError, Worker, type Job, type WorkerOptions } from 'bullmq';
import { ValidationError, describeIssues, isRetryable } from '@warden/domain';
import { jobDefinition, type JobName, type JobPayload } from './catalog.js';
import { queueKeyPrefix, type QueueName } from './names.js';
import type { RedisConnection } from './redis.js';
import { queueTelemetry } from './telemetry.js';

/** The part of a pino logger the worker factory uses. */
export interface WorkerLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ValidatedWorkerOptions<Q extends QueueName, R> {
  queue: Q;
  /** A connection made with role `worker` (`maxRetriesPerRequest: null`); BullMQ duplicates it as needed. */
  connection: RedisConnection;
  /** The installation's key prefix (on a Redis Cluster, see `queueKeyPrefix`). @defaultValue `warden` */
  prefix?: string;
  /** Jobs processed at once. @defaultValue `1` */
  concurrency?: number;
  logger: WorkerLogger;
  /**
   * Handles one valid job. A Warden error that is not retryable (see `ERROR_OUTCOMES` in @warden/domain, e.g.
   * a `ValidationError`) or an `UnrecoverableError` fails the job without retry; anything else is retried.
   */
  process: (payload: JobPayload<Q, JobName<Q>>, job: Job, name: JobName<Q>) => Promise<R>;
  /** Called for a job whose name or payload is not in the catalog, before it is failed (e.g. to audit it). */
  onInvalid?: (job: Job, error: ValidationError) => Promise<void> | void;
  /**
   * Tells an outage from a failure: returns how long to wait (ms) when `error` means a dependency is away
   * (Postgres restarting), `undefined` otherwise. A job that met an outage is put back, delayed, without using
   * one of its attempts — so a job outlives an outage of any length instead of failing for good after its
   * last retry. @defaultValue none: every error uses an attempt
   */
  waitOutOutage?: (error: unknown) => number | undefined;
  /** Extra BullMQ worker options. @defaultValue `runRetryDelay: 1000` (BullMQ's own is 15 s) */
  workerOptions?: Partial<WorkerOptions>;
}

/**
 * A BullMQ worker that validates every job against the catalog before handing it over, and fails at once a job whose error a retry cannot fix. An invalid job is
 * logged, reported to `onInvalid` and failed as unrecoverable: it never crashes the worker and is never retried.
 */
export function createValidatedWorker<Q extends QueueName, R>(options: ValidatedWorkerOptions<Q, R>): Worker {
  const { queue, logger } = options;
  const telemetry = queueTelemetry();
  const worker = new Worker(
    queue,
    async (job: Job, token?: string) => {
      const definition = jobDefinition(queue, job.name);
      const parsed = definition?.schema.safeParse(job.data);
      if (!definition || !parsed || !parsed.success) {
        const details =
          parsed && !parsed.success
            ? describeIssues(parsed.error.issues, 'data')
            : [{ path: 'name', message: `unknown job name "${job.name}"` }];
        const error = new ValidationError(
          `invalid job ${queue}/${job.name}: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`,
          details,
        );
        logger.warn(
          { module: 'queue', action: 'validate_job', status: 'invalid', queue, job_id: job.id, details },
          error.message,
        );
        try {
          await options.onInvalid?.(job, error);
        } catch (hookError) {
          logger.error({ module: 'queue', queue, job_id: job.id, err: hookError }, 'onInvalid hook failed');
        }
        throw new UnrecoverableError(error.message);
      }
      try {
        return await options.process(parsed.data as JobPayload<Q, JobName<Q>>, job, job.name as JobName<Q>);
      } catch (error) {
        const waitMs = options.waitOutOutage?.(error);
        if (waitMs !== undefined && token !== undefined) {
          logger.warn(
            {
              module: 'queue',
              action: 'wait_out_outage',
              status: 'delayed',
              queue,
              job_id: job.id,
              wait_ms: waitMs,
            },
            'a dependency is unavailable; the job waits and runs again without using an attempt',
          );
          await job.moveToDelayed(Date.now() + waitMs, token);
          throw new DelayedError();
        }
        if (!isRetryable(error)) throw new UnrecoverableError((error as Error).message);
        throw error;
      }
    },
    {
      connection: options.connection,
      prefix: queueKeyPrefix(options.prefix ?? 'warden', queue, options.connection),
      concurrency: options.concurrency ?? 1,
      // BullMQ waits this long before fetching again after Redis refused a fetch (its default, 15 s, leaves
      // the queue unserved that long after Redis is back); reconnecting itself is ioredis's retry strategy.
      runRetryDelay: 1_000,
      // With tracing on, each job runs inside a consumer span continuing the trace of whoever added it.
      ...(telemetry ? { telemetry } : {}),
      ...options.workerOptions,
    },
  );
  worker.on('error', (error) => logger.error({ module: 'queue', queue, err: error }, 'worker error'));
  return worker;
}
