/**
 * Trigger workers: the processes that run a cron trigger's agent or fallback handler. The scheduler puts a job
 * on the tenant's handler queue for each call; the worker runs the handler with the trigger context, enforces
 * the call's deadline, and reports the result (or the failure) on `cron-results`, where the scheduler records it.
 */
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import {
  HandlerJobSchema,
  HandlerQueueSchema,
  HandlerResultSchema,
  ValidationError,
  describeIssues,
  type HandlerErrorKind,
  type HandlerReport,
  type HandlerResult,
  type TriggerContext,
} from '@warden/domain';
import {
  WardenQueues,
  createRedis,
  queueKeyPrefix,
  triggerHandlerQueueName,
  type RedisConnection,
} from '@warden/queue';

/**
 * Thrown by a handler to say the input cannot be handled (bad params, a payload it does not understand): the
 * run fails without retries, since the same input would fail the same way. Any other error may be retried.
 */
export class TriggerValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TriggerValidationError';
  }
}

/**
 * Thrown by a handler whose run failed after spending: the cost and LLM calls are reported with the failure and
 * count against `max_daily_cost_usd` like a success's (a failure that reports none is charged the run's
 * reservation). Any error carrying numeric `cost_usd` / `llm_calls` properties is read the same way.
 *
 * @example
 * throw new TriggerRunFailedError('the model gave up', { cost_usd: 0.12, llm_calls: 7 });
 */
export class TriggerRunFailedError extends Error {
  readonly cost_usd: number | undefined;
  readonly llm_calls: number | undefined;
  constructor(message: string, spent: { cost_usd?: number; llm_calls?: number } = {}) {
    super(message);
    this.name = 'TriggerRunFailedError';
    this.cost_usd = spent.cost_usd;
    this.llm_calls = spent.llm_calls;
  }
}

/** What a failed run spent, as its error says (finite, non-negative numbers only). */
function spentBy(error: unknown): { cost_usd?: number; llm_calls?: number } {
  if (error === null || typeof error !== 'object') return {};
  const { cost_usd, llm_calls } = error as { cost_usd?: unknown; llm_calls?: unknown };
  const usable = (value: unknown): value is number =>
    typeof value === 'number' && Number.isFinite(value) && value >= 0;
  return {
    ...(usable(cost_usd) ? { cost_usd } : {}),
    ...(usable(llm_calls) ? { llm_calls: Math.floor(llm_calls) } : {}),
  };
}

/** What a handler may return; anything that is not of this shape is taken as the run's `output`. */
export interface TriggerHandlerResult {
  /** The agent runtime's id for this run (shown in history, for finding its logs). */
  agent_run_id?: string | null;
  /** LLM calls made (counted in `cron_llm_calls_total`). */
  llm_calls?: number;
  /** What the run cost; counts against `max_daily_cost_usd`. */
  cost_usd?: number;
  /** The run's output (compared with the fallback's in shadow mode). */
  output?: unknown;
}

export interface TriggerHandlerHelpers {
  /** Aborted when the call's deadline (`max_duration_ms`) passes: stop work and return. */
  signal: AbortSignal;
  /** The BullMQ job, for logging. */
  job: Job;
}

/** A cron trigger's agent or fallback: gets the trigger context, returns its result. */
export type TriggerHandler = (
  context: TriggerContext,
  helpers: TriggerHandlerHelpers,
) => Promise<TriggerHandlerResult | unknown> | TriggerHandlerResult | unknown;

export interface TriggerWorkerOptions {
  /** The tenant whose triggers this worker serves (handler queues are namespaced per tenant). */
  tenantId: string;
  /**
   * Redis: a URL (`redis+cluster://host:port,…` for a Redis Cluster, as Warden's `REDIS_URL`), or an ioredis
   * `Redis` or `Cluster` created with `maxRetriesPerRequest: null` (BullMQ workers need it).
   * @defaultValue `redis://127.0.0.1:6379`
   */
  connection?: string | RedisConnection;
  /** Warden's BullMQ key prefix (`QUEUE_PREFIX`). @defaultValue `warden` */
  prefix?: string;
  /** Handler calls run at once. @defaultValue `1` */
  concurrency?: number;
  /** How long a job is locked to this worker before it counts as stalled (renewed while running). @defaultValue `30000` */
  lockDurationMs?: number;
  /** How often stalled jobs (a worker that died mid-run) are looked for and handed to another worker. @defaultValue `30000` */
  stalledIntervalMs?: number;
  /** Where worker errors go (connection trouble, a report that could not be sent). @defaultValue silent */
  onError?: (error: unknown) => void;
}

export interface TriggerWorker {
  /** The BullMQ queue this worker consumes. */
  readonly queueName: string;
  readonly worker: Worker;
  /** Finishes the handler calls in flight, then closes the worker and the connections it opened. */
  close(): Promise<void>;
}

const RESULT_KEYS = new Set(['agent_run_id', 'llm_calls', 'cost_usd', 'output']);

/** A handler's return value as a result: `{ agent_run_id?, llm_calls?, cost_usd?, output? }`, else the value is the output. */
export function toHandlerResult(value: unknown): HandlerResult {
  if (value === undefined || value === null) return {};
  if (
    typeof value === 'object' &&
    !Array.isArray(value) &&
    Object.keys(value).length > 0 &&
    Object.keys(value).every((k) => RESULT_KEYS.has(k))
  ) {
    const parsed = HandlerResultSchema.safeParse(value);
    if (!parsed.success) {
      throw new TriggerValidationError(
        `the handler returned an invalid result: ${describeIssues(parsed.error.issues)
          .map((d) => `${d.path}: ${d.message}`)
          .join('; ')}`,
      );
    }
    return parsed.data;
  }
  return { output: value };
}

/**
 * Runs `handler` for every call the scheduler puts on the tenant's handler queue `queue` (the name a trigger's
 * `{ queue }` target gives). Stop it with `close()` (on SIGTERM).
 *
 * A worker killed mid-call loses nothing: BullMQ hands the stalled job to another worker, and if none finishes
 * it, the call times out at its deadline and the run moves on (fallback or retry) — it is never stuck running.
 *
 * @example
 * ```ts
 * const worker = createTriggerWorker('inventory-agent', async (ctx, { signal }) => {
 *   const report = await agent.run({ focus: ctx.focus, payload: ctx.payload, signal });
 *   return { agent_run_id: report.id, llm_calls: report.calls, cost_usd: report.cost, output: report.summary };
 * }, { tenantId: 'acme', connection: process.env.REDIS_URL });
 * ```
 */
export function createTriggerWorker(
  queue: string,
  handler: TriggerHandler,
  options: TriggerWorkerOptions,
): TriggerWorker {
  const queueCheck = HandlerQueueSchema.safeParse(queue);
  if (!queueCheck.success)
    throw new TypeError(
      `createTriggerWorker: queue "${queue}" ${queueCheck.error.issues[0]?.message ?? 'is not valid'}`,
    );
  const prefix = options.prefix ?? 'warden';
  const queueName = triggerHandlerQueueName(options.tenantId, queue);
  const ownsConnections = typeof options.connection !== 'object';
  const url = typeof options.connection === 'string' ? options.connection : 'redis://127.0.0.1:6379';
  const workerConnection =
    typeof options.connection === 'object' ? options.connection : createRedis(url, 'worker');
  const producerConnection =
    typeof options.connection === 'object' ? options.connection : createRedis(url, 'general');
  const onError = options.onError ?? (() => {});
  if (ownsConnections) {
    workerConnection.on('error', onError);
    if (producerConnection !== workerConnection) producerConnection.on('error', onError);
  }
  const reports = new WardenQueues({ connection: producerConnection, prefix });

  const report = async (message: HandlerReport) => {
    // The result must reach the scheduler; a brief Redis hiccup is ridden out, a long one ends at the deadline.
    for (let attempt = 1; ; attempt++) {
      try {
        await reports.enqueue('cron-results', 'result', message, { jobId: `result-${message.attempt_id}` });
        return;
      } catch (error) {
        if (attempt >= 5) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
      }
    }
  };

  const worker = new Worker(
    queueName,
    async (job: Job) => {
      const parsed = HandlerJobSchema.safeParse(job.data);
      if (!parsed.success)
        throw new UnrecoverableError(
          `invalid handler job: ${describeIssues(parsed.error.issues)
            .map((d) => `${d.path}: ${d.message}`)
            .join('; ')}`,
        );
      const { context, execution_id, attempt_id, tenant_id } = parsed.data;
      const base = { tenant_id, execution_id, attempt_id };
      const remaining = new Date(context.deadline_at).getTime() - Date.now();
      if (remaining <= 0) {
        await report({
          ...base,
          ok: false,
          error: { kind: 'timeout', message: 'the call reached the worker after its deadline' },
        });
        return { skipped: 'deadline passed' };
      }
      const controller = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const error = new Error(`the handler ran past its deadline (${context.deadline_at})`);
          error.name = 'DeadlineError';
          controller.abort(error);
          reject(error);
        }, remaining);
      });
      try {
        const value = await Promise.race([
          Promise.resolve().then(() => handler(context, { signal: controller.signal, job })),
          deadline,
        ]);
        const result = toHandlerResult(value);
        await report({ ...base, ok: true, result });
        return result;
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        await report({
          ...base,
          ok: false,
          error: { kind: errorKind(error), message: message.slice(0, 4000), ...spentBy(error) },
        });
        // Reported: as far as BullMQ is concerned the job is done (retries are the scheduler's to decide).
        return { failed: message };
      } finally {
        clearTimeout(timer);
      }
    },
    {
      connection: workerConnection,
      // The scheduler's prefix for this queue: with a hash tag of its own on a Redis Cluster.
      prefix: queueKeyPrefix(prefix, queueName, workerConnection),
      concurrency: options.concurrency ?? 1,
      lockDuration: options.lockDurationMs ?? 30_000,
      stalledInterval: options.stalledIntervalMs ?? 30_000,
    },
  );
  worker.on('error', onError);

  return {
    queueName,
    worker,
    async close() {
      await worker.close();
      await reports.close();
      if (ownsConnections) {
        workerConnection.disconnect();
        producerConnection.disconnect();
      }
    },
  };
}

function errorKind(error: unknown): HandlerErrorKind {
  if (error instanceof TriggerValidationError || error instanceof ValidationError) return 'validation';
  if (error instanceof Error && (error.name === 'TriggerValidationError' || error.name === 'ValidationError'))
    return 'validation';
  if (
    error instanceof Error &&
    (error.name === 'DeadlineError' || error.name === 'AbortError' || error.name === 'TimeoutError')
  )
    return 'timeout';
  return 'handler';
}
