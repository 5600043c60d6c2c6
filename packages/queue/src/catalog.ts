import type { JobsOptions } from 'bullmq';
import { z } from 'zod';
import {
  ChangeSetIdSchema,
  HandlerReportSchema,
  LeadScanTriggerSchema,
  LeadWindowKindSchema,
  TaskEventSchema,
  TenantIdSchema,
} from '@warden/domain';
import type { QueueName } from './names.js';

/** A job kind on one queue: the payload schema shared by producer and consumer, and its default options. */
export interface JobDefinition<S extends z.ZodType = z.ZodType> {
  schema: S;
  defaultOptions: JobsOptions;
}

const keepForAWhile = {
  removeOnComplete: { age: 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

/**
 * The job catalog: queue → job name → definition. A consumer safe-parses every job against it; a payload
 * that does not match is unrecoverable (logged and failed, never retried, never a crash).
 */
export const jobCatalog = {
  'supervisor-events': {
    event: {
      schema: TaskEventSchema,
      // Postgres holds the truth (the inbox row); a few quick retries cover transient faults, the poller the rest.
      defaultOptions: { attempts: 5, backoff: { type: 'exponential', delay: 200 }, ...keepForAWhile },
    },
    /**
     * The events of one ingest request — or of one tenant's single-event requests stored together (the API's
     * group commit) — in one job: a BullMQ job costs about as much Redis and API CPU as the Postgres insert of
     * its event, so one job per request instead of per event roughly doubles batch ingest.
     */
    events: {
      schema: z.object({ events: z.array(TaskEventSchema).min(1).max(500) }),
      defaultOptions: { attempts: 5, backoff: { type: 'exponential', delay: 200 }, ...keepForAWhile },
    },
  },
  'cron-fires': {
    /**
     * A fire. From a trigger's job scheduler (its id `repeat:<trigger_id>:<millis>` carries the fire time), or
     * a manual run / backfill whose ledger row exists already (`scheduled_for` given). Postgres dedupes.
     */
    fire: {
      schema: z.object({
        tenant_id: TenantIdSchema,
        trigger_id: z.string().min(1),
        scheduled_for: z.iso.datetime().optional(),
        schedule_hash: z.string().optional(),
        /** The trigger's priority: higher fires are governed first when many wait. */
        priority: z.number().int().optional(),
        /**
         * When the job was first taken off the queue, kept when an outage postponed it: fires hidden by a
         * late job are those due before its first start, not before the start after the outage.
         */
        first_processed_on: z.number().int().optional(),
      }),
      defaultOptions: { attempts: 5, backoff: { type: 'exponential', delay: 1000 }, ...keepForAWhile },
    },
    /** Move a run on: a retry or jittered start that is due, or a buffered run whose turn came. */
    advance: {
      schema: z.object({ tenant_id: TenantIdSchema, execution_id: z.string().min(1) }),
      defaultOptions: { attempts: 5, backoff: { type: 'exponential', delay: 500 }, ...keepForAWhile },
    },
    /** Bring the job schedulers in line with Postgres: one trigger, or all of them when no id is given. */
    reconcile: {
      schema: z.object({ trigger_id: z.string().min(1).optional() }),
      defaultOptions: {
        attempts: 5,
        backoff: { type: 'exponential', delay: 1000 },
        removeOnComplete: true,
        removeOnFail: { age: 24 * 3600 },
      },
    },
  },
  'cron-results': {
    /** How a handler call ended, reported by the trigger worker that ran it. */
    result: {
      schema: HandlerReportSchema,
      defaultOptions: { attempts: 5, backoff: { type: 'exponential', delay: 500 }, ...keepForAWhile },
    },
  },
  'lead-scans': {
    /**
     * One tenant's scan. From the API (its `lead_scans` row is queued: `scan_id`), or a call of a trigger's
     * `lead_scan` handler (`trigger_call`: the lead miner reports the scan's outcome on `cron-results`).
     * Not retried here: a failed scan is recorded, and a trigger's own retry policy decides what follows.
     */
    scan: {
      schema: z.object({
        tenant_id: TenantIdSchema,
        window: LeadWindowKindSchema,
        dry_run: z.boolean().default(false),
        force: z.boolean().default(false),
        scan_id: z.uuid().optional(),
        trigger: LeadScanTriggerSchema.default('queue'),
        requested_by: z.string().max(200).optional(),
        /** The scheduler's handler call this scan answers (docs/scheduler.md); its report goes to `cron-results`. */
        trigger_call: z.object({ execution_id: z.string().min(1), attempt_id: z.string().min(1) }).optional(),
      }),
      defaultOptions: { attempts: 1, ...keepForAWhile },
    },
  },
  changesets: {
    execute: {
      schema: z.object({ tenant_id: TenantIdSchema, changeset_id: ChangeSetIdSchema }),
      // Postgres holds the change set; retries cover transient faults (a busy workspace is a delay, not an attempt).
      defaultOptions: { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, ...keepForAWhile },
    },
  },
  notifications: {
    /**
     * Send one delivery (a notification to one channel). Postgres holds it and its log; the attempts and the
     * backoff are the delivery's retries, and the notifier records each in the log.
     */
    deliver: {
      schema: z.object({ delivery_id: z.uuid() }),
      defaultOptions: { attempts: 5, backoff: { type: 'exponential', delay: 2000 }, ...keepForAWhile },
    },
  },
} as const satisfies Record<QueueName, Record<string, JobDefinition>>;

export type JobCatalog = typeof jobCatalog;
export type JobName<Q extends QueueName> = keyof JobCatalog[Q] & string;
type DefinitionOf<Q extends QueueName, N extends JobName<Q>> =
  JobCatalog[Q][N] extends JobDefinition<infer S> ? S : never;
/** What a producer passes (defaults may be omitted). */
export type JobInput<Q extends QueueName, N extends JobName<Q>> = z.input<DefinitionOf<Q, N>>;
/** What a consumer receives after validation. */
export type JobPayload<Q extends QueueName, N extends JobName<Q>> = z.output<DefinitionOf<Q, N>>;

export function jobDefinition<Q extends QueueName>(queue: Q, name: string): JobDefinition | undefined {
  const jobs = jobCatalog[queue] as Record<string, JobDefinition>;
  return Object.hasOwn(jobs, name) ? jobs[name] : undefined;
}
