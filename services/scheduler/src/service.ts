import { UnrecoverableError, type Job, type Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { HandlerReportSchema, type HandlerResult } from '@warden/domain';
import type { Logger, RunnableService } from '@warden/observability';
import {
  QUEUE_NAMES,
  WardenQueues,
  createRedis,
  createRedlock,
  createValidatedWorker,
  pingRedis,
} from '@warden/queue';
import { openRuntime, type ServiceRuntime } from '@warden/runtime';
import type { Config } from './config.js';
import { ExecutionEngine, type FireRequest } from './execution-engine.js';
import { FireBatcher } from './fire-batcher.js';
import { HandlerDispatcher } from './handler-dispatcher.js';
import { schedulerHealth } from './health.js';
import { HttpHandlerClient } from './http-handler-client.js';
import { createSchedulerMetrics } from './metrics.js';
import { startSchedulerOpsServer, type SchedulerOpsServer } from './ops-server.js';
import { JobSchedulerReconciler } from './reconciler.js';
import { ExecutionSweeper } from './sweeper.js';

export interface SchedulerService extends RunnableService {
  runtime(): ServiceRuntime | undefined;
  engine(): ExecutionEngine | undefined;
  reconciler(): JobSchedulerReconciler | undefined;
  sweeper(): ExecutionSweeper | undefined;
  /** The bound ops port once started (useful with OPS_PORT=0). */
  opsPort(): number;
}

/** The fire time of a job a job scheduler produced: the millis in its id `repeat:<trigger_id>:<millis>`. */
export function fireTimeOf(job: Pick<Job, 'id'>): Date | undefined {
  const match = /^repeat:.+:(\d+)$/.exec(job.id ?? '');
  return match ? new Date(Number(match[1])) : undefined;
}

/**
 * The scheduler: keeps the BullMQ job schedulers in step with `cron_triggers`, governs every fire into exactly
 * one `cron_executions` row, runs the agent or fallback handlers, and sweeps up after lost jobs.
 */
export function createService(config: Config, options: { logger?: Logger } = {}): SchedulerService {
  let runtime: ServiceRuntime | undefined;
  let producer: Redis | undefined;
  let workerConnection: Redis | undefined;
  let queues: WardenQueues | undefined;
  let dispatcher: HandlerDispatcher | undefined;
  let http: HttpHandlerClient | undefined;
  let engine: ExecutionEngine | undefined;
  let reconciler: JobSchedulerReconciler | undefined;
  let sweeper: ExecutionSweeper | undefined;
  let workers: Worker[] = [];
  let ops: SchedulerOpsServer | undefined;

  return {
    runtime: () => runtime,
    engine: () => engine,
    reconciler: () => reconciler,
    sweeper: () => sweeper,
    opsPort: () => ops?.port ?? 0,
    async start() {
      runtime = await openRuntime({
        service: 'scheduler',
        config,
        maxDbConnections: config.DB_POOL_SIZE,
        ...(options.logger ? { logger: options.logger } : {}),
      });
      const { db, logger, registry, redis } = runtime;
      const metrics = createSchedulerMetrics(registry, db);
      producer = createRedis(config.REDIS_URL, 'general');
      queues = new WardenQueues({ connection: producer, prefix: config.QUEUE_PREFIX });
      const redlock = createRedlock([redis]);
      http = new HttpHandlerClient({
        allowedHosts: config.HTTP_TARGET_ALLOWED_HOSTS,
        breakerResetMs: config.HTTP_BREAKER_RESET_MS,
      });
      let activeEngine: ExecutionEngine | undefined;
      dispatcher = new HandlerDispatcher({
        connection: producer,
        prefix: config.QUEUE_PREFIX,
        http,
        logger,
        onHttpOutcome: (job, outcome) => activeEngine!.recordHttpOutcome(job, outcome),
      });
      engine = activeEngine = new ExecutionEngine({
        db,
        queues,
        dispatcher,
        logger,
        metrics,
        defaultMaxDurationMs: config.DEFAULT_MAX_DURATION_MS,
      });
      const engineRef = engine;
      const fires = new FireBatcher({
        run: (requests: FireRequest[]) => engineRef.fireMany(requests),
        priorityOf: (request: FireRequest) => request.priority ?? 0,
        maxBatch: config.FIRE_BATCH_SIZE,
        maxInFlight: config.FIRE_BATCHES_IN_FLIGHT,
      });
      reconciler = new JobSchedulerReconciler({
        db,
        queue: queues.get(QUEUE_NAMES.cronFires),
        redlock,
        prefix: config.QUEUE_PREFIX,
        logger,
        metrics,
      });
      const reconcilerRef = reconciler;
      sweeper = new ExecutionSweeper({
        db,
        engine,
        redlock,
        prefix: config.QUEUE_PREFIX,
        logger,
        metrics,
        intervalMs: config.SWEEP_INTERVAL_MS,
        graceMs: config.SWEEP_GRACE_MS,
        batchSize: config.SWEEP_BATCH_SIZE,
      });

      // The schedulers first, so fires that were due while no replica ran come in at once.
      try {
        const result = await reconciler.reconcileAll();
        logger.info(
          { module: 'reconciler', action: 'reconcile', status: result ? 'ok' : 'skipped', ...result },
          result ? 'job schedulers reconciled' : 'another replica is reconciling',
        );
      } catch (error) {
        logger.warn(
          { module: 'reconciler', action: 'reconcile', status: 'error', err: error },
          'initial reconcile failed; the interval will retry',
        );
      }

      workerConnection = createRedis(config.REDIS_URL, 'worker');
      workers = [
        createValidatedWorker({
          queue: QUEUE_NAMES.cronFires,
          connection: workerConnection,
          prefix: config.QUEUE_PREFIX,
          concurrency: config.FIRE_CONCURRENCY,
          logger,
          process: async (payload, job, name) => {
            if (name === 'fire') {
              const fire = payload as {
                tenant_id: string;
                trigger_id: string;
                scheduled_for?: string;
                priority?: number;
              };
              const fromScheduler = fire.scheduled_for === undefined;
              const scheduledFor = fire.scheduled_for ? new Date(fire.scheduled_for) : fireTimeOf(job);
              if (!scheduledFor)
                throw new UnrecoverableError(
                  `fire job ${job.id} has neither scheduled_for nor a job scheduler id`,
                );
              return fires.submit({
                tenant_id: fire.tenant_id,
                trigger_id: fire.trigger_id,
                scheduled_for: scheduledFor,
                fromScheduler,
                ...(fire.priority !== undefined ? { priority: fire.priority } : {}),
                ...(job.processedOn ? { processedOn: job.processedOn } : {}),
              });
            }
            if (name === 'advance')
              return engineRef.advance((payload as { execution_id: string }).execution_id);
            const { trigger_id } = payload as { trigger_id?: string };
            return trigger_id ? reconcilerRef.reconcileOne(trigger_id) : reconcilerRef.reconcileAll();
          },
        }),
        createValidatedWorker({
          queue: QUEUE_NAMES.cronResults,
          connection: workerConnection,
          prefix: config.QUEUE_PREFIX,
          concurrency: config.RESULT_CONCURRENCY,
          logger,
          process: async (payload) => {
            const report = HandlerReportSchema.parse(payload);
            await engineRef.advance(report.execution_id, {
              attempt_id: report.attempt_id,
              outcome: report.ok
                ? // Checked against the result schema where it is recorded (a bad one fails the call as `validation`).
                  { ok: true, result: (report.result ?? {}) as HandlerResult }
                : {
                    ok: false,
                    kind: report.error?.kind ?? 'handler',
                    message: report.error?.message ?? 'the handler reported a failure without a message',
                  },
            });
          },
        }),
      ];
      sweeper.start();
      reconciler.start(config.RECONCILE_INTERVAL_MS);
      ops = await startSchedulerOpsServer({
        port: config.OPS_PORT,
        registry,
        readiness: runtime.readiness,
        health: () => schedulerHealth({ db, redis, slowMs: config.HEALTH_SLOW_MS }),
      });
      await Promise.all([pingRedis(redis), ...workers.map((w) => w.waitUntilReady())]);
      logger.info(
        {
          module: 'lifecycle',
          action: 'start',
          status: 'ok',
          ops_port: ops.port,
          fire_concurrency: config.FIRE_CONCURRENCY,
          prefix: config.QUEUE_PREFIX,
        },
        'scheduler started',
      );
    },
    async stop() {
      // Workers first (in-flight fires finish), then HTTP calls get a moment, then timers, queues, Redis, Postgres.
      await Promise.allSettled(workers.map((w) => w.close()));
      workers = [];
      await sweeper?.stop();
      await reconciler?.stop();
      await dispatcher?.close(config.STOP_GRACE_MS);
      http?.shutdown();
      await queues?.close();
      await ops?.close();
      workerConnection?.disconnect();
      producer?.disconnect();
      await runtime?.close();
      sweeper = reconciler = undefined;
      dispatcher = undefined;
      http = undefined;
      queues = undefined;
      ops = undefined;
      workerConnection = producer = undefined;
      runtime = undefined;
      engine = undefined;
    },
  };
}
