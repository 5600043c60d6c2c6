/**
 * Keeps one BullMQ job scheduler per enabled trigger, in step with Postgres. Runs at start, on every change
 * (a `reconcile` job the API queues) and on an interval as a safety net (Redis lost and restored empty).
 *
 * Upsert only: a changed trigger's scheduler is upserted in place (BullMQ swaps its next job atomically),
 * never removed and re-added; only disabled or deleted triggers lose theirs. Every pass runs under one
 * Redlock and reads Postgres inside it, so two replicas can never write an older definition over a newer one.
 */
import type { Queue } from 'bullmq';
import { canonicalJson, scheduleOf, sha256Hex } from '@warden/domain';
import { findTriggerSchedule, listSchedulableTriggers, type Db } from '@warden/db';
import type { Logger } from '@warden/observability';
import { jobDefinition } from '@warden/queue';
import type { SchedulerMetrics } from '../ops/metrics.js';
import { inLockTurn, type Redlock } from './lock-turn.js';

interface ScheduleFields {
  trigger_id: string;
  tenant_id: string;
  expression: string;
  timezone: string;
  priority: number;
  enabled: boolean;
}

export interface ReconcileResult {
  upserted: number;
  removed: number;
  unchanged: number;
}

export interface JobSchedulerReconcilerOptions {
  db: Db;
  /** The `cron-fires` queue. */
  queue: Queue;
  redlock: Redlock;
  /** Namespaces the lock (the BullMQ prefix), so installations sharing a Redis do not block each other. */
  prefix: string;
  logger: Logger;
  metrics?: SchedulerMetrics;
}

/** How long one pass may hold the reconcile lock. */
const RECONCILE_LOCK_TTL_MS = 30_000;

/** What the job scheduler of a trigger must look like; the hash says when an upsert is due. */
export function desiredScheduler(trigger: ScheduleFields) {
  const schedule = scheduleOf(trigger.expression, trigger.timezone);
  const schedule_hash = sha256Hex(
    canonicalJson({ e: trigger.expression, z: trigger.timezone, p: trigger.priority }),
  ).slice(0, 16);
  const repeat =
    schedule.kind === 'cron'
      ? { pattern: schedule.pattern, tz: schedule.timezone }
      : // Aligned to multiples of the interval (whole seconds, minutes…), like the previews.
        {
          every: schedule.everyMs,
          startDate: Math.floor(Date.now() / schedule.everyMs) * schedule.everyMs + schedule.everyMs,
        };
  const fire = jobDefinition('cron-fires', 'fire')!;
  return {
    schedule_hash,
    repeat,
    template: {
      name: 'fire',
      // The trigger's priority orders fires waiting for governance (the group committer in service.ts);
      // BullMQ's own priority would send every fire through its slower prioritized set (measured: twice the
      // burst latency).
      data: {
        tenant_id: trigger.tenant_id,
        trigger_id: trigger.trigger_id,
        schedule_hash,
        priority: trigger.priority,
      },
      opts: fire.defaultOptions,
    },
  };
}

export class JobSchedulerReconciler {
  private readonly log: Logger;

  constructor(private readonly options: JobSchedulerReconcilerOptions) {
    this.log = options.logger.child({ module: 'reconciler' });
  }

  private get lockKey(): string {
    return `${this.options.prefix}:lock:cron-reconcile`;
  }

  /** Every trigger. Returns undefined when another replica holds the lock (it is doing the same work). */
  reconcileAll(): Promise<ReconcileResult | undefined> {
    return inLockTurn(this.options.redlock, this.lockKey, RECONCILE_LOCK_TTL_MS, async () => {
      const triggers = await listSchedulableTriggers(this.options.db);
      const existing = await this.options.queue.getJobSchedulers(0, -1);
      const byId = new Map(existing.map((s) => [s.key, s]));
      const result: ReconcileResult = { upserted: 0, removed: 0, unchanged: 0 };
      const wanted = new Set<string>();
      for (const trigger of triggers) {
        if (!trigger.enabled) continue;
        wanted.add(trigger.trigger_id);
        const outcome = await this.apply(trigger, byId.get(trigger.trigger_id));
        result[outcome] += 1;
      }
      for (const scheduler of existing) {
        // Only fire schedulers are ours to remove.
        if (!wanted.has(scheduler.key) && scheduler.name === 'fire') {
          await this.options.queue.removeJobScheduler(scheduler.key);
          result.removed += 1;
        }
      }
      this.count(result);
      return result;
    });
  }

  /** One trigger (after a change): waits for the lock, since the change must not be lost. */
  async reconcileOne(triggerId: string): Promise<ReconcileResult> {
    return this.options.redlock.using(
      [this.lockKey],
      RECONCILE_LOCK_TTL_MS,
      { retryCount: 100, retryDelay: 200, retryJitter: 100 },
      async () => {
        const trigger = await findTriggerSchedule(this.options.db, triggerId);
        const existing = await this.options.queue.getJobScheduler(triggerId);
        const result: ReconcileResult = { upserted: 0, removed: 0, unchanged: 0 };
        if (!trigger || trigger.deleted_at || !trigger.enabled) {
          if (existing) {
            await this.options.queue.removeJobScheduler(triggerId);
            result.removed = 1;
          } else result.unchanged = 1;
        } else {
          result[await this.apply(trigger, existing)] += 1;
        }
        this.count(result);
        return result;
      },
    );
  }

  private async apply(
    trigger: ScheduleFields,
    existing: { template?: { data?: { schedule_hash?: string } } } | undefined,
  ): Promise<'upserted' | 'unchanged'> {
    let desired: ReturnType<typeof desiredScheduler>;
    try {
      desired = desiredScheduler(trigger);
    } catch (error) {
      // Stored triggers were validated; one that no longer validates (a zone dropped from tzdata) is
      // reported, not fatal.
      this.log.error(
        { action: 'reconcile', status: 'invalid', trigger_id: trigger.trigger_id, err: error },
        'a stored trigger has an unusable schedule; not scheduled',
      );
      return 'unchanged';
    }
    if (existing?.template?.data?.schedule_hash === desired.schedule_hash) return 'unchanged';
    await this.options.queue.upsertJobScheduler(trigger.trigger_id, desired.repeat, desired.template);
    this.log.info(
      {
        action: 'reconcile',
        status: 'upserted',
        trigger_id: trigger.trigger_id,
        tenant_id: trigger.tenant_id,
        expression: trigger.expression,
        timezone: trigger.timezone,
      },
      'job scheduler upserted',
    );
    return 'upserted';
  }

  private count(result: ReconcileResult): void {
    if (result.upserted > 0) this.options.metrics?.reconciled.inc({ change: 'upserted' }, result.upserted);
    if (result.removed > 0) this.options.metrics?.reconciled.inc({ change: 'removed' }, result.removed);
  }
}
