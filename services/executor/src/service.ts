import { hostname } from 'node:os';
import { DelayedError, type Worker } from 'bullmq';
import type { Logger, RunnableService } from '@warden/observability';
import {
  QUEUE_NAMES,
  createRedis,
  createRedlock,
  createValidatedWorker,
  openLockClients,
  type LockClients,
  type RedisConnection,
} from '@warden/queue';
import {
  closeWorker,
  egressGuardFromConfig,
  openRuntime,
  withBootstrap,
  type ActivePolicyStore,
  type ServiceRuntime,
} from '@warden/runtime';
import type { Config } from './config.js';
import { ExecutorPoller } from './executor-poller.js';
import { createApprovalExpirySweeper } from './approval-expiry-sweeper.js';
import { HealthChecker } from './health-checker.js';
import { JournalRecovery } from './journal-recovery.js';
import { createExecutorMetrics } from './metrics.js';
import type { ExecutorHooks } from './pipeline/context.js';
import { ChangeSetRunner } from './pipeline/runner.js';
import {
  createWriteGatePolicyStore,
  loadWriteGatePolicy,
  type LoadedWriteGatePolicy,
} from './policy-loader.js';
import { createVerificationSandbox } from './sandbox/index.js';
import { WorkspaceLocks } from './workspace-lock.js';
import { loadWorkspaces } from './workspaces.js';

export interface ExecutorService extends RunnableService {
  runtime(): ServiceRuntime | undefined;
  runner(): ChangeSetRunner | undefined;
  poller(): ExecutorPoller | undefined;
  recovery(): JournalRecovery | undefined;
  /** Each tenant's active stored WriteGate version, once started. */
  writeGatePolicies(): ActivePolicyStore<'writegate', LoadedWriteGatePolicy> | undefined;
}

export interface ExecutorServiceOptions {
  /** @defaultValue a pino logger at `LOG_LEVEL` */
  logger?: Logger;
  /** Pause points inside an execution (tests). @defaultValue none */
  hooks?: ExecutorHooks;
  /** Keep extending workspace locks while working; tests turn it off to play a stalled holder. @defaultValue `true` */
  extendLocks?: boolean;
  /** Take jobs from the queue; off, the caller drives `runner().execute()` itself (tests). @defaultValue `true` */
  consume?: boolean;
}

/**
 * The executor: applies allowed or approved change sets from the `changesets` queue, one writer per workspace,
 * atomically, with rollback — and before it takes any job, recovers whatever a previous process left in flight.
 */
export function createExecutorService(config: Config, options: ExecutorServiceOptions = {}): ExecutorService {
  let runtime: ServiceRuntime | undefined;
  let lockRedis: RedisConnection | undefined;
  let lockClients: LockClients | undefined;
  let worker: Worker | undefined;
  let poller: ExecutorPoller | undefined;
  let approvalExpiry: ReturnType<typeof createApprovalExpirySweeper> | undefined;
  let runner: ChangeSetRunner | undefined;
  let recovery: JournalRecovery | undefined;
  let healthChecker: HealthChecker | undefined;
  let writeGatePolicies: ActivePolicyStore<'writegate', LoadedWriteGatePolicy> | undefined;

  return {
    runtime: () => runtime,
    runner: () => runner,
    poller: () => poller,
    recovery: () => recovery,
    writeGatePolicies: () => writeGatePolicies,
    async start() {
      // The files first: a bad policy or workspace stops the service before it touches anything.
      const policy = await loadWriteGatePolicy(config.WRITEGATE_POLICY_FILE);
      const workspaces = await loadWorkspaces(config);
      runtime = await openRuntime({
        service: 'executor',
        config,
        opsPort: config.OPS_PORT,
        maxDbConnections: config.DB_POOL_SIZE,
        ...(options.logger ? { logger: options.logger } : {}),
      });
      const { db, logger, registry } = runtime;
      let recovered = false;
      // Not ready until in-flight change sets of the previous process are settled.
      runtime.readiness.recovery = async () => {
        if (!recovered) throw new Error('recovering change sets left in flight');
      };
      const executorId = config.EXECUTOR_ID ?? `${hostname()}-${process.pid}`;
      const metrics = createExecutorMetrics(registry);
      writeGatePolicies = createWriteGatePolicyStore({
        db,
        logger,
        // A connection of its own: a subscribed connection can do nothing else.
        subscriber: createRedis(config.REDIS_URL, 'general'),
        prefix: config.QUEUE_PREFIX,
        pollIntervalMs: config.POLICY_POLL_INTERVAL_MS,
      });
      await writeGatePolicies.start();
      // Locks on connections of their own: the REDLOCK_URLS servers, else a second connection to the main Redis.
      lockClients = openLockClients(
        config.REDLOCK_URLS,
        () => (lockRedis = createRedis(config.REDIS_URL, 'general')),
      );
      const locks = new WorkspaceLocks({
        redlock: createRedlock(lockClients.clients),
        db,
        prefix: config.QUEUE_PREFIX,
        ttlMs: config.EXECUTOR_LOCK_TTL_MS,
        fenceWaitMs: config.EXECUTOR_FENCE_WAIT_MS,
        executorId,
        logger,
        ...(options.extendLocks === undefined ? {} : { extendLocks: options.extendLocks }),
      });
      const idempotencyRetentionMs = config.EXECUTOR_IDEMPOTENCY_RETENTION_HOURS * 3_600_000;
      recovery = new JournalRecovery({
        db,
        logger,
        locks,
        workspaces,
        executorId,
        writeConcurrency: config.EXECUTOR_WRITE_CONCURRENCY,
        idempotencyRetentionMs,
        metrics,
      });
      healthChecker = new HealthChecker({
        resetTimeoutMs: config.EXECUTOR_BREAKER_RESET_MS,
        maxTimeoutMs: config.EXECUTOR_MAX_COMMAND_TIMEOUT_MS,
        outputLimitBytes: config.EXECUTOR_OUTPUT_LIMIT_BYTES,
        egress: egressGuardFromConfig(config),
      });
      runner = new ChangeSetRunner({
        db,
        logger,
        policy: withBootstrap(writeGatePolicies, policy),
        workspaces,
        locks,
        recovery,
        healthChecker,
        executorId,
        lockWaitMs: config.EXECUTOR_LOCK_WAIT_MS,
        duplicateWaitMs: config.EXECUTOR_DUPLICATE_WAIT_MS,
        idempotencyRetentionMs,
        maxCommandTimeoutMs: config.EXECUTOR_MAX_COMMAND_TIMEOUT_MS,
        sandbox: createVerificationSandbox(config.sandbox, logger),
        outputLimitBytes: config.EXECUTOR_OUTPUT_LIMIT_BYTES,
        writeConcurrency: config.EXECUTOR_WRITE_CONCURRENCY,
        writeDelayMs: config.EXECUTOR_FAULT_WRITE_DELAY_MS,
        metrics,
        ...(options.hooks ? { hooks: options.hooks } : {}),
      });

      // Crash recovery before any job: a dead holder's lock lives out its TTL, so wait that long for it.
      const settled = await recovery.recoverAll({
        onlyExpiredLeases: false,
        lockWaitMs: config.EXECUTOR_LOCK_TTL_MS + 1000,
      });
      if (settled > 0)
        logger.warn(
          { module: 'recovery', action: 'recover', status: 'ok', count: settled },
          `recovered ${settled} change set(s) left in flight`,
        );

      poller = new ExecutorPoller({
        db,
        queues: runtime.queues,
        recovery,
        logger,
        intervalMs: config.EXECUTOR_POLL_INTERVAL_MS,
        requeueGraceMs: config.EXECUTOR_REQUEUE_GRACE_MS,
        // Longer than any validation (which writes nothing and keeps no journal) could take on a live executor.
        stalledAfterMs: Math.max(config.EXECUTOR_REQUEUE_GRACE_MS, config.EXECUTOR_LOCK_TTL_MS * 4),
        backupRetentionDays: config.EXECUTOR_BACKUP_RETENTION_DAYS,
      });
      poller.start();
      approvalExpiry = createApprovalExpirySweeper({
        db,
        logger,
        intervalMs: config.APPROVAL_EXPIRY_INTERVAL_MS,
        warnBeforeMs: config.APPROVAL_EXPIRY_WARN_BEFORE_MS,
      });
      approvalExpiry.start();

      if (options.consume !== false) {
        const activeRunner = runner;
        worker = createValidatedWorker({
          queue: QUEUE_NAMES.changesets,
          connection: runtime.workerConnection(),
          prefix: config.QUEUE_PREFIX,
          concurrency: config.EXECUTOR_CONCURRENCY,
          logger,
          process: async (payload, job) => {
            const outcome = await activeRunner.execute(payload);
            if (outcome.status === 'deferred') {
              // Not a failure: the job waits its turn without using up an attempt.
              await job.moveToDelayed(Date.now() + outcome.retryInMs, job.token);
              throw new DelayedError();
            }
            return outcome;
          },
        });
      }
      recovered = true;
      logger.info(
        {
          module: 'lifecycle',
          action: 'start',
          status: 'ok',
          ops_port: runtime.ops?.port,
          executor_id: executorId,
          workspaces: workspaces.names(),
          policy_version: policy.policy.version,
          policy_hash: policy.hash,
        },
        'executor started',
      );
    },
    async stop() {
      // Workers first (an execution in hand finishes, within closeWorker's grace), then the poller; the
      // runtime closes queues, Redis and Postgres. A forced close is safe: an interrupted execution's journal is recovered.
      if (worker) await closeWorker(worker);
      worker = undefined;
      await poller?.stop();
      poller = undefined;
      await approvalExpiry?.stop();
      approvalExpiry = undefined;
      await writeGatePolicies?.stop();
      writeGatePolicies = undefined;
      healthChecker?.shutdown();
      healthChecker = undefined;
      lockClients?.close();
      lockClients = undefined;
      lockRedis?.disconnect();
      lockRedis = undefined;
      await runtime?.close();
      runtime = undefined;
      runner = undefined;
      recovery = undefined;
    },
  };
}
