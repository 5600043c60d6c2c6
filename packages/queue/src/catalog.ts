import type { JobsOptions } from 'bullmq';
import { z } from 'zod';
import { TaskEventSchema, TenantIdSchema } from '@warden/domain';
import type { QueueName } from './names.js';

/** A job kind on one queue: the payload schema shared by producer and consumer, and its default options. */
export interface JobDefinition<S extends z.ZodType = z.ZodType> {
  schema: S;
  defaultOptions: JobsOptions;
}

const keepForAWhile = { removeOnComplete: { age: 3600, count: 10_000 }, removeOnFail: { age: 7 * 24 * 3600 } };

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
     * The events of one ingest request, in one job: a BullMQ job costs about as much Redis and API CPU as the
     * Postgres insert of its event, so one job per request instead of per event roughly doubles batch ingest.
     */
    events: {
      schema: z.object({ events: z.array(TaskEventSchema).min(1).max(500) }),
      defaultOptions: { attempts: 5, backoff: { type: 'exponential', delay: 200 }, ...keepForAWhile },
    },
  },
  'cron-fires': {
    fire: {
      schema: z.object({ trigger_id: z.string(), tenant_id: TenantIdSchema }).loose(),
      defaultOptions: { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, ...keepForAWhile },
    },
  },
  'lead-scans': {
    scan: {
      schema: z.object({ tenant_id: TenantIdSchema, window: z.string(), dry_run: z.boolean().default(false) }),
      defaultOptions: { attempts: 1, ...keepForAWhile },
    },
  },
  changesets: {
    execute: {
      schema: z.object({ tenant_id: TenantIdSchema, changeset_id: z.string() }),
      defaultOptions: { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, ...keepForAWhile },
    },
  },
} as const satisfies Record<QueueName, Record<string, JobDefinition>>;

export type JobCatalog = typeof jobCatalog;
export type JobName<Q extends QueueName> = keyof JobCatalog[Q] & string;
type DefinitionOf<Q extends QueueName, N extends JobName<Q>> = JobCatalog[Q][N] extends JobDefinition<infer S> ? S : never;
/** What a producer passes (defaults may be omitted). */
export type JobInput<Q extends QueueName, N extends JobName<Q>> = z.input<DefinitionOf<Q, N>>;
/** What a consumer receives after validation. */
export type JobPayload<Q extends QueueName, N extends JobName<Q>> = z.output<DefinitionOf<Q, N>>;

export function jobDefinition<Q extends QueueName>(queue: Q, name: string): JobDefinition | undefined {
  const jobs = jobCatalog[queue] as Record<string, JobDefinition>;
  return Object.hasOwn(jobs, name) ? jobs[name] : undefined;
}
