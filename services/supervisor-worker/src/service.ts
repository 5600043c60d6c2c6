import type { Worker } from 'bullmq';
import type { TaskEvent } from '@warden/domain';
import type { Logger, RunnableService } from '@warden/observability';
import { QUEUE_NAMES, createRedis, createValidatedWorker } from '@warden/queue';
import {
  GroupCommitter,
  splitConcurrency,
  closeWorker,
  openRuntime,
  type PeriodicTask,
  type ServiceRuntime,
} from '@warden/runtime';
import type { Config } from './config.js';
import { DecisionProcessor, type EventOutcome } from './decision-processor.js';
import { PolicySandbox } from './policy-sandbox.js';
import { createSupervisorMetrics } from './metrics.js';
import { InboxPoller } from './poller.js';
import { createGateExpirySweeper } from './gate-expiry-sweeper.js';

import { loadSupervisorPolicy } from './policy-loader.js';
import { SupervisorPolicyStore } from './policy-store.js';
import { ArchiveMaintenance } from './archive-maintenance.js';
import { createDecisionPublisher } from './publisher.js';

export interface SupervisorService extends RunnableService {
  runtime(): ServiceRuntime | undefined;
  processor(): DecisionProcessor | undefined;
  poller(): InboxPoller | undefined;
  /** Each tenant's active stored policy version, once started. */
  policies(): SupervisorPolicyStore | undefined;
  /** The event archive's partition rotation, once started. */
  archiveMaintenance(): ArchiveMaintenance | undefined;
}

/**
 * The supervisor worker: consumes `supervisor-events`, decides each event through the policies in group
 * transactions, publishes decisions, and runs the inbox poller.
 */
export interface SupervisorServiceOptions {
  logger?: Logger;
  /**
   * A module (file URL) whose `createPolicyRegistry()` replaces the built-in policies, for embedding Warden
   * with policies of your own. They run in the same sandbox, under the same budget.
   * @defaultValue the built-in policies
   */
  policyRegistryModule?: string;
}

export function createSupervisorService(
  config: Config,
  options: SupervisorServiceOptions = {},
): SupervisorService {
  let runtime: ServiceRuntime | undefined;
  let workers: Worker[] = [];
  let processor: DecisionProcessor | undefined;
  let poller: InboxPoller | undefined;
  let gateExpiry: PeriodicTask | undefined;
  let sandbox: PolicySandbox | undefined;
  let policies: SupervisorPolicyStore | undefined;
  let archiveMaintenance: ArchiveMaintenance | undefined;

  return {
    runtime: () => runtime,
    processor: () => processor,
    poller: () => poller,
    policies: () => policies,
    archiveMaintenance: () => archiveMaintenance,
    async start() {
      // The policy first: a bad file stops the service before it touches anything.
      const policy = await loadSupervisorPolicy(config.SUPERVISOR_POLICY_FILE);
      runtime = await openRuntime({
        service: 'supervisor-worker',
        config,
        opsPort: config.OPS_PORT,
        maxDbConnections: config.DB_POOL_SIZE,
        ...(options.logger ? { logger: options.logger } : {}),
      });
      const { db, logger, registry, redis, queues } = runtime;
      const metrics = createSupervisorMetrics(registry, db);
      sandbox = new PolicySandbox({
        policy,
        logger,
        threads: config.POLICY_THREADS,
        onPolicyStopped: (reason) => metrics.policiesStopped.inc({ reason }),
        ...(options.policyRegistryModule ? { registryModule: options.policyRegistryModule } : {}),
      });
      await sandbox.start();
      policies = new SupervisorPolicyStore({
        db,
        bootstrap: policy,
        logger,
        // A connection of its own: a subscribed connection can do nothing else.
        subscriber: createRedis(config.REDIS_URL, 'general'),
        prefix: config.QUEUE_PREFIX,
        pollIntervalMs: config.POLICY_POLL_INTERVAL_MS,
      });
      await policies.start();
      processor = new DecisionProcessor({
        decider: sandbox,
        db,
        policy,
        tenantPolicies: policies,
        logger,
        metrics,
        claimTtlMs: config.CLAIM_TTL_MS,
        maxAttempts: config.MAX_ATTEMPTS,
        retryBaseDelayMs: config.RETRY_BASE_DELAY_MS,
        onDecided: createDecisionPublisher(redis, config.QUEUE_PREFIX),
      });
      const activeProcessor = processor;
      const committer = new GroupCommitter<TaskEvent, EventOutcome>({
        run: (events) => activeProcessor.processEvents(events),
        maxGroupSize: config.MAX_GROUP_SIZE,
        maxInFlight: config.MAX_GROUPS_IN_FLIGHT,
        // One tenant per group: each group then waits only for its own tenant's audit chain head.
        groupKeyOf: (event) => event.tenant_id,
      });

      poller = new InboxPoller({
        db,
        queues,
        logger,
        metrics,
        intervalMs: config.POLL_INTERVAL_MS,
        graceMs: config.POLL_GRACE_MS,
        batchSize: config.POLL_BATCH_SIZE,
        maxBatchSize: config.POLL_MAX_BATCH_SIZE,
        maxQueuedJobs: config.POLL_MAX_QUEUED_JOBS,
        maxAttempts: config.MAX_ATTEMPTS,
        retentionDays: config.INBOX_RETENTION_DAYS,
        auditKeys: config.WARDEN_AUDIT_KEY,
        anchorIntervalMs: config.AUDIT_ANCHOR_INTERVAL_MS,
      });
      poller.start();
      archiveMaintenance = new ArchiveMaintenance({
        db,
        logger,
        retentionDays: config.ARCHIVE_RETENTION_DAYS,
        daysAhead: config.ARCHIVE_PARTITIONS_AHEAD,
        intervalMs: config.ARCHIVE_MAINTENANCE_INTERVAL_MS,
      });
      archiveMaintenance.start();
      // Redis back after an outage: events accepted meanwhile wait only in the inbox; drain them now, not at
      // the next interval. (Not on the first connect: nothing was missed then.)
      const activePoller = poller;
      let redisWasLost = false;
      runtime.queueConnection.on('close', () => (redisWasLost = true));
      runtime.queueConnection.on('ready', () => {
        if (redisWasLost) activePoller.drainSoon();
        redisWasLost = false;
      });
      gateExpiry = createGateExpirySweeper({
        db,
        logger,
        intervalMs: config.GATE_EXPIRY_INTERVAL_MS,
        warnBeforeMs: config.GATE_EXPIRY_WARN_BEFORE_MS,
      });
      gateExpiry.start();

      // Several BullMQ workers fetch side by side (see EVENT_WORKERS); every event goes to the same groups.
      // Postgres holds the retry state (failed rows come back through the poller); a job is done once every
      // event in it has an outcome. A batch job's events join the same groups as single ones.
      const processJob = async (payload: unknown, name: string) => {
        if (name === 'events') {
          const { events } = payload as { events: TaskEvent[] };
          return Promise.all(events.map((event) => committer.submit(event)));
        }
        return committer.submit(payload as TaskEvent);
      };
      const shares = splitConcurrency(config.WORKER_CONCURRENCY, config.EVENT_WORKERS);
      const workerConnection = runtime.workerConnection();
      workers = shares.map((concurrency) =>
        createValidatedWorker({
          queue: QUEUE_NAMES.supervisorEvents,
          connection: workerConnection,
          prefix: config.QUEUE_PREFIX,
          concurrency,
          logger,
          process: (payload, _job, name) => processJob(payload, name),
        }),
      );
      logger.info(
        {
          module: 'lifecycle',
          action: 'start',
          status: 'ok',
          ops_port: runtime.ops?.port,
          policy_version: policy.version,
          concurrency: config.WORKER_CONCURRENCY,
          event_workers: shares.length,
        },
        'supervisor-worker started',
      );
    },
    async stop() {
      // Workers first (finish in-flight groups), then the poller and the sandbox; the runtime closes queues,
      // Redis and Postgres. A forced close is
      // safe: in-flight events' claims expire and the poller hands them out again.
      await Promise.all(workers.map((worker) => closeWorker(worker)));
      workers = [];
      await poller?.stop();
      poller = undefined;
      await policies?.stop();
      policies = undefined;
      await archiveMaintenance?.stop();
      archiveMaintenance = undefined;
      await gateExpiry?.stop();
      gateExpiry = undefined;
      await sandbox?.close();
      sandbox = undefined;
      await runtime?.close();
      runtime = undefined;
      processor = undefined;
    },
  };
}
