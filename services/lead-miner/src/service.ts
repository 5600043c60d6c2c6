import type { Worker } from 'bullmq';
import type { LeadRulesFile } from '@warden/domain';
import { redlockLeadScanLock } from '@warden/lead-engine';
import type { Logger, RunnableService } from '@warden/observability';
import {
  QUEUE_NAMES,
  createRedis,
  createRedlock,
  createValidatedWorker,
  type WardenQueues,
} from '@warden/queue';
import {
  ActivePolicyStore,
  closeWorker,
  openRuntime,
  withBootstrap,
  type ServiceRuntime,
} from '@warden/runtime';
import type { Config } from './config.js';
import { createLeadMetrics } from './metrics.js';
import { loadLeadRules } from './rules-loader.js';
import { createScanJobHandler } from './scan-jobs.js';
import { removeLegacyLeadSchedules } from './legacy-schedules.js';

export interface LeadMinerService extends RunnableService {
  runtime(): ServiceRuntime | undefined;
  /** The rules file loaded at start (tenants without a stored `lead-rules` version scan with it). */
  rules(): LeadRulesFile | undefined;
  /** Each tenant's active stored `lead-rules` version, once started. */
  tenantRules(): ActivePolicyStore<'lead-rules'> | undefined;
  /** The queues this service produces on (reports of scans triggers asked for, on `cron-results`). */
  queues(): WardenQueues | undefined;
}

/**
 * The lead miner: consumes `lead-scans` (one tenant's scan, asked for by the API or by a trigger of the
 * scheduler — the default 24h and 7d scans are each tenant's built-in triggers) and serves /healthz, /readyz
 * and /metrics. It schedules nothing itself.
 */
export function createLeadMinerService(config: Config, options: { logger?: Logger } = {}): LeadMinerService {
  let runtime: ServiceRuntime | undefined;
  let rules: LeadRulesFile | undefined;
  let worker: Worker | undefined;
  let tenantRules: ActivePolicyStore<'lead-rules'> | undefined;

  return {
    runtime: () => runtime,
    rules: () => rules,
    tenantRules: () => tenantRules,
    queues: () => runtime?.queues,
    async start() {
      // The rules first: a bad file stops the service before it touches anything.
      rules = await loadLeadRules(config.LEAD_RULES_FILE);
      runtime = await openRuntime({
        service: 'lead-miner',
        config,
        opsPort: config.OPS_PORT,
        maxDbConnections: config.DB_POOL_SIZE,
        ...(options.logger ? { logger: options.logger } : {}),
      });
      const { db, logger, registry, queues } = runtime;
      const metrics = createLeadMetrics(registry);
      tenantRules = new ActivePolicyStore({
        db,
        kind: 'lead-rules',
        logger,
        // A connection of its own: a subscribed connection can do nothing else.
        subscriber: createRedis(config.REDIS_URL, 'general'),
        prefix: config.QUEUE_PREFIX,
        pollIntervalMs: config.POLICY_POLL_INTERVAL_MS,
      });
      await tenantRules.start();
      const lock = redlockLeadScanLock(createRedlock(runtime.lockClients()), {
        ttlMs: config.LEAD_SCAN_LOCK_TTL_MS,
      });

      // Upgrading from a version that scheduled its own scans: the scheduler's triggers run them now.
      const removedSchedulers = await removeLegacyLeadSchedules(queues.get(QUEUE_NAMES.leadScans));

      worker = createValidatedWorker({
        queue: QUEUE_NAMES.leadScans,
        connection: runtime.workerConnection(),
        prefix: config.QUEUE_PREFIX,
        concurrency: config.WORKER_CONCURRENCY,
        logger,
        process: createScanJobHandler({
          db,
          rules: withBootstrap(tenantRules, rules),
          lock,
          queues,
          prefix: config.QUEUE_PREFIX,
          logger,
          metrics,
        }),
        // A scan can read for minutes; BullMQ must not declare it stalled and hand it to another worker meanwhile.
        workerOptions: { lockDuration: 120_000 },
      });
      logger.info(
        {
          module: 'lifecycle',
          action: 'start',
          status: 'ok',
          ops_port: runtime.ops?.port,
          rules_version: rules.version,
          removed_legacy_schedulers: removedSchedulers,
          concurrency: config.WORKER_CONCURRENCY,
        },
        'lead-miner started',
      );
    },
    async stop() {
      // The worker first, then the runtime (queues, Redis, Postgres). A running scan gets 20 s to finish: within the 25 s
      // runService allows a stop and Kubernetes' 30 s grace. One cut short is failed as abandoned by the next
      // scan of its window, and its lock expires with its TTL.
      if (worker) await closeWorker(worker, 20_000);
      worker = undefined;
      await tenantRules?.stop();
      tenantRules = undefined;
      await runtime?.close();
      runtime = undefined;
    },
  };
}
