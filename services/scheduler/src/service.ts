import type { Worker } from 'bullmq';
import { startOpsServer, type Logger, type OpsServer, type RunnableService } from '@warden/observability';
import { QUEUE_NAMES, createRedlock, createValidatedWorker, pingRedis } from '@warden/queue';
import {
  GroupCommitter,
  splitConcurrency,
  PeriodicTask,
  closeWorker,
  egressGuardFromConfig,
  openRuntime,
  type ServiceRuntime,
} from '@warden/runtime';
import { BuiltInTriggerSeeder } from './background/built-in-triggers.js';
import { JobSchedulerReconciler } from './background/reconciler.js';
import { ExecutionSweeper } from './background/sweeper.js';
import type { Config } from './config.js';
import { ExecutionEngine, type FireOutcome, type FireRequest } from './engine/execution-engine.js';
import { HandlerDispatcher } from './handlers/handler-dispatcher.js';
import { HttpHandlerClient } from './handlers/http-handler-client.js';
import { healthStatusCode, schedulerHealth } from './ops/health.js';
import { createSchedulerMetrics } from './ops/metrics.js';
import { cronFiresProcessor, cronResultsProcessor, waitOutOutage } from './queue-jobs.js';

export { fireTimeOf } from './queue-jobs.js';

export interface SchedulerService extends RunnableService {
  runtime(): ServiceRuntime | undefined;
  engine(): ExecutionEngine | undefined;
  reconciler(): JobSchedulerReconciler | undefined;
  sweeper(): ExecutionSweeper | undefined;
  /** Creates tenants' built-in triggers; undefined when `LEAD_SCAN_TRIGGERS=off` or before start. */
  builtInTriggers(): BuiltInTriggerSeeder | undefined;
  /** The bound ops port once started (useful with OPS_PORT=0). */
  opsPort(): number;
}

/**
 * The scheduler: keeps the BullMQ job schedulers in step with `cron_triggers`, governs every fire into
 * exactly one `cron_executions` row, runs the agent or fallback handlers, and sweeps up after lost jobs.
 */
export function createService(config: Config, options: { logger?: Logger } = {}): SchedulerService {
  let runtime: ServiceRuntime | undefined;
  let dispatcher: HandlerDispatcher | undefined;
  let http: HttpHandlerClient | undefined;
  let engine: ExecutionEngine | undefined;
  let reconciler: JobSchedulerReconciler | undefined;
  let sweeper: ExecutionSweeper | undefined;
  let seeder: BuiltInTriggerSeeder | undefined;
  let workers: Worker[] = [];
  let passes: PeriodicTask[] = [];
  let ops: OpsServer | undefined;

  return {
    runtime: () => runtime,
    engine: () => engine,
    reconciler: () => reconciler,
    sweeper: () => sweeper,
    builtInTriggers: () => seeder,
    opsPort: () => ops?.port ?? 0,
    async start() {
      runtime = await openRuntime({
        service: 'scheduler',
        config,
        maxDbConnections: config.DB_POOL_SIZE,
        ...(options.logger ? { logger: options.logger } : {}),
      });
      const { db, logger, registry, redis, queues } = runtime;
      const metrics = createSchedulerMetrics(registry, db);
      const redlock = createRedlock(runtime.lockClients());
      http = new HttpHandlerClient({
        egress: egressGuardFromConfig(config),
        breakerResetMs: config.HTTP_BREAKER_RESET_MS,
      });
      // The dispatcher hands HTTP outcomes to the engine, which is built with the dispatcher: a late binding.
      let outcomeSink: ExecutionEngine | undefined;
      dispatcher = new HandlerDispatcher({
        connection: runtime.queueConnection,
        queues,
        prefix: config.QUEUE_PREFIX,
        http,
        logger,
        onHttpOutcome: (job, outcome) => outcomeSink!.recordHttpOutcome(job, outcome),
      });
      const liveEngine = new ExecutionEngine({
        db,
        queues,
        dispatcher,
        logger,
        metrics,
        defaultMaxDurationMs: config.DEFAULT_MAX_DURATION_MS,
      });
      engine = outcomeSink = liveEngine;
      // Group commit of fires: a failed group is retried fire by fire, so one bad fire never holds back the
      // others.
      const fires = new GroupCommitter<FireRequest, FireOutcome>({
        run: (requests) => liveEngine.fireMany(requests),
        priorityOf: (request) => request.priority ?? 0,
        maxGroupSize: config.FIRE_BATCH_SIZE,
        maxInFlight: config.FIRE_BATCHES_IN_FLIGHT,
        onGroupFailure: 'retry-each',
      });
      reconciler = new JobSchedulerReconciler({
        db,
        queue: queues.get(QUEUE_NAMES.cronFires),
        redlock,
        prefix: config.QUEUE_PREFIX,
        logger,
        metrics,
      });
      sweeper = new ExecutionSweeper({
        db,
        engine: liveEngine,
        redlock,
        prefix: config.QUEUE_PREFIX,
        logger,
        metrics,
        graceMs: config.SWEEP_GRACE_MS,
        batchSize: config.SWEEP_BATCH_SIZE,
      });

      seeder =
        config.LEAD_SCAN_TRIGGERS === 'on'
          ? new BuiltInTriggerSeeder({ db, redlock, prefix: config.QUEUE_PREFIX, logger })
          : undefined;
      const reconcilerRef = reconciler;
      const seederRef = seeder;
      // New tenants' built-in triggers first, so the reconcile after it schedules them. A failed seeding must
      // not hold back the reconcile of every other trigger: it is logged and tried again next pass.
      const reconcileWithBuiltIns = async () => {
        await seederRef
          ?.seed()
          .catch((error: unknown) =>
            logger.warn(
              { module: 'built_in_triggers', action: 'create', status: 'error', err: error },
              'could not create built-in triggers; the next reconcile tries again',
            ),
          );
        return reconcilerRef.reconcileAll();
      };

      // The schedulers first, so fires that were due while no replica ran come in at once.
      try {
        const result = await reconcileWithBuiltIns();
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

      const workerConnection = runtime.workerConnection();
      // Several workers fetch fires side by side (see FIRE_WORKERS); all hand them to the one group committer.
      const fireShares = splitConcurrency(config.FIRE_CONCURRENCY, config.FIRE_WORKERS);
      const processFire = cronFiresProcessor({ fires, engine: liveEngine, reconciler });
      workers = [
        ...fireShares.map((concurrency) =>
          createValidatedWorker({
            queue: QUEUE_NAMES.cronFires,
            connection: workerConnection,
            prefix: config.QUEUE_PREFIX,
            concurrency,
            logger,
            process: processFire,
            // A fire met while Postgres is away waits for it: every fire gets its ledger row when it returns.
            waitOutOutage,
          }),
        ),
        createValidatedWorker({
          queue: QUEUE_NAMES.cronResults,
          connection: workerConnection,
          prefix: config.QUEUE_PREFIX,
          concurrency: config.RESULT_CONCURRENCY,
          logger,
          process: cronResultsProcessor(liveEngine),
          waitOutOutage,
        }),
      ];
      const sweeperRef = sweeper;
      const every = (name: string, intervalMs: number, run: () => Promise<unknown>) =>
        new PeriodicTask({ name, intervalMs, run, logger });
      passes = [
        every('sweeper', config.SWEEP_INTERVAL_MS, () => sweeperRef.sweepOnce()),
        // The safety net under the `reconcile` jobs the API queues on every change (Redis lost and restored empty).
        // It also gives tenants that appeared since the last pass their built-in triggers.
        every('reconciler', config.RECONCILE_INTERVAL_MS, reconcileWithBuiltIns),
      ];
      for (const pass of passes) pass.start();
      ops = await startOpsServer({
        port: config.OPS_PORT,
        registry,
        readiness: runtime.readiness,
        routes: {
          '/health': async () => {
            const health = await schedulerHealth({ db, redis, slowMs: config.HEALTH_SLOW_MS });
            return { status: healthStatusCode(health), body: health };
          },
        },
      });
      await Promise.all([pingRedis(redis), ...workers.map((w) => w.waitUntilReady())]);
      logger.info(
        {
          module: 'lifecycle',
          action: 'start',
          status: 'ok',
          ops_port: ops.port,
          fire_concurrency: config.FIRE_CONCURRENCY,
          fire_workers: fireShares.length,
          prefix: config.QUEUE_PREFIX,
        },
        'scheduler started',
      );
    },
    async stop() {
      // Workers first (in-flight fires finish), then HTTP calls get a moment, then timers and the ops
      // server; the runtime closes queues, Redis and Postgres.
      await Promise.allSettled(workers.map((w) => closeWorker(w)));
      workers = [];
      await Promise.all(passes.map((pass) => pass.stop()));
      passes = [];
      await dispatcher?.close(config.STOP_GRACE_MS);
      http?.shutdown();
      await ops?.close();
      await runtime?.close();
      sweeper = reconciler = undefined;
      seeder = undefined;
      dispatcher = undefined;
      http = undefined;
      ops = undefined;
      runtime = undefined;
      engine = undefined;
    },
  };
}
