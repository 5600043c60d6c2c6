/**
 * `warden.cron(...)`: register a governed cron trigger and run workers for its handlers in one call — the
 * TypeScript counterpart of the predecessor's `@app.cron` decorator. The trigger lives in Warden (Postgres);
 * Warden's scheduler fires it and governs every run; this process only runs the handler functions.
 */
import type { RedisConnection } from '@warden/queue';
import type {
  FallbackStrategy,
  OverlapPolicy,
  Target,
  TriggerDefinitionInput,
  TriggerMode,
} from '@warden/domain';
import { createTriggerWorker, type TriggerHandler, type TriggerWorker } from './trigger-worker.js';
import { TriggersClient, type RegisteredTrigger, type TriggersClientOptions } from './triggers-client.js';

/** A handler: a function run by a worker here, a queue some other worker serves, or an HTTP endpoint. */
export type CronHandler =
  TriggerHandler | { queue: string } | { url: string; timeoutMs?: number; headers?: Record<string, string> };

/** Every trigger field, camelCase; each defaults as documented in docs/scheduler.md. */
export interface CronOptions {
  /** IANA zone the cron fields, days and daily caps count in. @defaultValue `UTC` */
  tz?: string;
  /** @defaultValue `""` */
  description?: string;
  /** Which skills the agent loads. @defaultValue `null` */
  focus?: string | string[] | null;
  /** Static JSON handed to every run. @defaultValue `{}` */
  payload?: Record<string, unknown>;
  /** The agent. @defaultValue none */
  agent?: CronHandler;
  /** The deterministic fallback (often the legacy job). @defaultValue none */
  fallback?: CronHandler;
  /** @defaultValue `on_failure` */
  fallbackStrategy?: FallbackStrategy;
  /** Share of runs the agent serves. @defaultValue `1` with an agent, `0` without */
  migrationWeight?: number;
  /** @defaultValue `live` */
  mode?: TriggerMode;
  /** @defaultValue `0` */
  cooldownSeconds?: number;
  /** @defaultValue no cap */
  maxDailyRuns?: number | null;
  /** @defaultValue no cap */
  maxDailyCostUsd?: number | null;
  /** @defaultValue no cap */
  maxCostPerRunUsd?: number | null;
  /** @defaultValue the scheduler's `DEFAULT_MAX_DURATION_MS` */
  maxDurationMs?: number | null;
  /** @defaultValue `{ window: 10, failureThreshold: 0.5, minRuns: 10, resetTimeoutSeconds: 300 }` */
  circuitBreaker?: {
    window?: number;
    failureThreshold?: number;
    minRuns?: number;
    resetTimeoutSeconds?: number;
  };
  /** @defaultValue `skip` */
  overlapPolicy?: OverlapPolicy;
  /** @defaultValue `60` */
  catchupWindowSeconds?: number;
  /** @defaultValue `0` */
  jitterMs?: number;
  /** @defaultValue `true` */
  retryOnFailure?: boolean;
  /** @defaultValue `3` */
  maxRetries?: number;
  /** @defaultValue `60` */
  retryDelaySeconds?: number;
  /** @defaultValue `0` */
  priority?: number;
  /** @defaultValue `[]` */
  tags?: string[];
  /** @defaultValue `true` */
  enabled?: boolean;
  /** @defaultValue `{ compareKeys: [], consistencyThreshold: 0.99, consistencyWindow: 20, minSamples: 10, rollbackAfterAgentFailures: 2, autoRollback: true }` */
  migration?: {
    compareKeys?: string[];
    consistencyThreshold?: number;
    consistencyWindow?: number;
    minSamples?: number;
    rollbackAfterAgentFailures?: number;
    autoRollback?: boolean;
  };
  /** Raise `migrationWeight` even without proven shadow consistency (audited as forced). @defaultValue `false` */
  force?: boolean;
  /** Handler calls each local worker runs at once. @defaultValue `1` */
  concurrency?: number;
}

export interface WardenCronOptions extends TriggersClientOptions {
  /**
   * Redis for the handler workers (a URL, or an ioredis client with `maxRetriesPerRequest: null`); needed only
   * when a handler is a function. @defaultValue `redis://127.0.0.1:6379`
   */
  redis?: string | RedisConnection;
  /** Warden's BullMQ key prefix (`QUEUE_PREFIX`). @defaultValue `warden` */
  queuePrefix?: string;
  /** Passed to each worker: how often stalled calls are handed to another worker. @defaultValue `30000` */
  stalledIntervalMs?: number;
  /** Where worker errors go. @defaultValue silent */
  onError?: (error: unknown) => void;
}

export interface CronRegistration extends RegisteredTrigger {
  /** Workers started here for function handlers. */
  workers: TriggerWorker[];
}

/** Builds the wire definition from SDK options; function handlers become queue targets named after the trigger. */
export function cronDefinition(
  eventName: string,
  expression: string,
  options: CronOptions,
): { definition: TriggerDefinitionInput; functions: Array<{ queue: string; handler: TriggerHandler }> } {
  const functions: Array<{ queue: string; handler: TriggerHandler }> = [];
  const target = (handler: CronHandler | undefined, role: 'agent' | 'fallback'): Target | null => {
    if (handler === undefined) return null;
    if (typeof handler === 'function') {
      const queue = `${eventName.replace(/\./g, '_')}-${role}`.slice(0, 100);
      functions.push({ queue, handler });
      return { queue };
    }
    return handler as Target;
  };
  const cb = options.circuitBreaker;
  const m = options.migration;
  const definition: TriggerDefinitionInput = {
    event_name: eventName,
    expression,
    ...(options.tz !== undefined ? { timezone: options.tz } : {}),
    ...(options.description !== undefined ? { description: options.description } : {}),
    ...(options.focus !== undefined ? { focus: options.focus } : {}),
    ...(options.payload !== undefined ? { payload: options.payload } : {}),
    agent: target(options.agent, 'agent'),
    fallback: target(options.fallback, 'fallback'),
    ...(options.fallbackStrategy !== undefined ? { fallback_strategy: options.fallbackStrategy } : {}),
    ...(options.migrationWeight !== undefined ? { migration_weight: options.migrationWeight } : {}),
    ...(options.mode !== undefined ? { mode: options.mode } : {}),
    ...(options.cooldownSeconds !== undefined ? { cooldown_seconds: options.cooldownSeconds } : {}),
    ...(options.maxDailyRuns !== undefined ? { max_daily_runs: options.maxDailyRuns } : {}),
    ...(options.maxDailyCostUsd !== undefined ? { max_daily_cost_usd: options.maxDailyCostUsd } : {}),
    ...(options.maxCostPerRunUsd !== undefined ? { max_cost_per_run_usd: options.maxCostPerRunUsd } : {}),
    ...(options.maxDurationMs !== undefined ? { max_duration_ms: options.maxDurationMs } : {}),
    ...(cb
      ? {
          circuit_breaker: {
            ...(cb.window !== undefined ? { window: cb.window } : {}),
            ...(cb.failureThreshold !== undefined ? { failure_threshold: cb.failureThreshold } : {}),
            ...(cb.minRuns !== undefined ? { min_runs: cb.minRuns } : {}),
            ...(cb.resetTimeoutSeconds !== undefined
              ? { reset_timeout_seconds: cb.resetTimeoutSeconds }
              : {}),
          },
        }
      : {}),
    ...(options.overlapPolicy !== undefined ? { overlap_policy: options.overlapPolicy } : {}),
    ...(options.catchupWindowSeconds !== undefined
      ? { catchup_window_seconds: options.catchupWindowSeconds }
      : {}),
    ...(options.jitterMs !== undefined ? { jitter_ms: options.jitterMs } : {}),
    ...(options.retryOnFailure !== undefined ? { retry_on_failure: options.retryOnFailure } : {}),
    ...(options.maxRetries !== undefined ? { max_retries: options.maxRetries } : {}),
    ...(options.retryDelaySeconds !== undefined ? { retry_delay_seconds: options.retryDelaySeconds } : {}),
    ...(options.priority !== undefined ? { priority: options.priority } : {}),
    ...(options.tags !== undefined ? { tags: options.tags } : {}),
    ...(options.enabled !== undefined ? { enabled: options.enabled } : {}),
    ...(m
      ? {
          migration: {
            ...(m.compareKeys !== undefined ? { compare_keys: m.compareKeys } : {}),
            ...(m.consistencyThreshold !== undefined
              ? { consistency_threshold: m.consistencyThreshold }
              : {}),
            ...(m.consistencyWindow !== undefined ? { consistency_window: m.consistencyWindow } : {}),
            ...(m.minSamples !== undefined ? { min_samples: m.minSamples } : {}),
            ...(m.rollbackAfterAgentFailures !== undefined
              ? { rollback_after_agent_failures: m.rollbackAfterAgentFailures }
              : {}),
            ...(m.autoRollback !== undefined ? { auto_rollback: m.autoRollback } : {}),
          },
        }
      : {}),
  };
  return { definition, functions };
}

/**
 * Registers cron triggers and runs their handlers.
 *
 * @example
 * ```ts
 * const warden = new WardenCron({ baseUrl: 'http://warden-api:3000', apiKey: process.env.WARDEN_API_KEY!, redis: process.env.REDIS_URL });
 * await warden.cron('inventory-check', '0 * * * *', {
 *   tz: 'Europe/Rome',
 *   focus: 'inventory',
 *   maxDailyCostUsd: 5,
 *   agent: async (ctx) => ({ output: await agent.checkInventory(ctx.payload) }),
 *   fallback: async () => legacyInventoryJob(),
 * });
 * process.on('SIGTERM', () => void warden.close());
 * ```
 */
export class WardenCron {
  /** Management calls (list, pause, resume, run, status, history…). */
  readonly triggers: TriggersClient;
  private readonly workers: TriggerWorker[] = [];

  constructor(private readonly options: WardenCronOptions) {
    this.triggers = new TriggersClient(options);
  }

  /**
   * Registers (upserts) the trigger, then starts a worker for each handler given as a function. Safe to call
   * on every start of the service: an unchanged definition changes nothing.
   */
  async cron(eventName: string, expression: string, options: CronOptions = {}): Promise<CronRegistration> {
    const { definition, functions } = cronDefinition(eventName, expression, options);
    const registered = await this.triggers.register(definition, { force: options.force ?? false });
    const workers = functions.map(({ queue, handler }) =>
      createTriggerWorker(queue, handler, {
        tenantId: registered.trigger.tenant_id,
        connection: this.options.redis ?? 'redis://127.0.0.1:6379',
        prefix: this.options.queuePrefix ?? 'warden',
        concurrency: options.concurrency ?? 1,
        ...(this.options.stalledIntervalMs !== undefined
          ? { stalledIntervalMs: this.options.stalledIntervalMs }
          : {}),
        ...(this.options.onError ? { onError: this.options.onError } : {}),
      }),
    );
    this.workers.push(...workers);
    return { ...registered, workers };
  }

  /** Stops every worker started here (in-flight handler calls finish first). */
  async close(): Promise<void> {
    await Promise.allSettled(this.workers.splice(0).map((w) => w.close()));
  }
}
