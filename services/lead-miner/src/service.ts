import type { Worker } from 'bullmq';
import type { LeadRulesFile } from '@warden/domain';
import { redlockLeadScanLock } from '@warden/lead-engine';
import type { Logger, RunnableService } from '@warden/observability';
import { QUEUE_NAMES, createRedlock, createValidatedWorker, type WardenQueues } from '@warden/queue';
import { closeWorker, openRuntime, type ServiceRuntime } from '@warden/runtime';
import type { Config } from './config.js';
import { createLeadMetrics } from './metrics.js';
import { loadLeadRules } from './rules-loader.js';
import { createScanJobHandler } from './scan-jobs.js';
import { reconcileLeadSchedules } from './scan-schedules.js';

export interface LeadMinerService extends RunnableService {
  runtime(): ServiceRuntime | undefined;
  /** The rules loaded at start. */
  rules(): LeadRulesFile | undefined;
  /** The queues this service produces on (the fan-out of scheduled scans). */
  queues(): WardenQueues | undefined;
}

/**
 * The lead miner: consumes `lead-scans` (one tenant's scan, or a scheduled scan of every tenant), owns the
 * job schedulers of the default scans (24h daily, 7d weekly) until the scheduler service registers them as
 * built-in triggers, and serves /healthz, /readyz and /metrics.
 */
export function createLeadMinerService(config: Config, options: { logger?: Logger } = {}): LeadMinerService {
  let runtime: ServiceRuntime | undefined;
  let rules: LeadRulesFile | undefined;
  let worker: Worker | undefined;

  return {
    runtime: () => runtime,
    rules: () => rules,
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
      const { db, logger, registry, redis, queues } = runtime;
      const metrics = createLeadMetrics(registry);
      const lock = redlockLeadScanLock(createRedlock([redis]), { ttlMs: config.LEAD_SCAN_LOCK_TTL_MS });

      const schedules = await reconcileLeadSchedules(queues.get(QUEUE_NAMES.leadScans), config);

      worker = createValidatedWorker({
        queue: QUEUE_NAMES.leadScans,
        connection: runtime.workerConnection(),
        prefix: config.QUEUE_PREFIX,
        concurrency: config.WORKER_CONCURRENCY,
        logger,
        process: createScanJobHandler({
          db,
          rules,
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
          schedules,
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
      await runtime?.close();
      runtime = undefined;
    },
  };
}
