/**
 * The writes of `POST /v1/events`: a request's events become pending inbox rows (durable), then supervisor
 * jobs (best-effort: the supervisor's poller enqueues what is durable but was never queued). Concurrent
 * single-event requests share both writes (group commit): one INSERT and one WAL flush, then one round trip to
 * Redis carrying one job per tenant — so a busy API writes many events per statement and per job, and an idle
 * one writes each at the end of the event-loop turn it arrived in (see GroupCommitter's `gatherWithinTurn`).
 * Each request still answers only after its own event is durable and its enqueue was tried, with its own
 * accepted/duplicate count.
 */
import { insertPendingEvents, type Db } from '@warden/db';
import type { TaskEvent } from '@warden/domain';
import type { Logger } from '@warden/observability';
import { QUEUE_NAMES, eventBatchJobId, eventJobId, type WardenQueues } from '@warden/queue';
import { GroupCommitter } from '@warden/runtime';
import { enqueueAfterCommit } from './enqueue-after-commit.js';

export interface EventIngesterOptions {
  db: Db;
  queues: WardenQueues;
  logger: Logger;
  /** How long an enqueue waits for Redis before the request answers anyway (its events are durable). */
  enqueueTimeoutMs: number;
  /** Told how many stored events were left to the supervisor's poller because their enqueue failed. */
  onEnqueueDeferred?: (count: number) => void;
  /** Requests whose events share one INSERT and one enqueue. @defaultValue `64` */
  maxGroupSize?: number;
  /** INSERTs of groups running at once, each on a pooled connection. @defaultValue `4` */
  maxInFlight?: number;
}

/** Stores a request's events as pending inbox rows, then enqueues the new ones; returns those, in order. */
export type EventIngester = (events: readonly TaskEvent[]) => Promise<TaskEvent[]>;

export function createEventIngester(options: EventIngesterOptions): EventIngester {
  const { db } = options;
  const enqueue = (fresh: readonly TaskEvent[]) => enqueueEvents(options, fresh);
  const singles = new GroupCommitter<TaskEvent, { stored: TaskEvent | undefined; queued: Promise<void> }>({
    run: async (events) => {
      const stored = new Set(
        (await insertPendingEvents(db, events)).map((event) => `${event.tenant_id}\u0000${event.event_id}`),
      );
      // Two requests with the same event id in one group: the first is the one stored, the second a duplicate
      // (insertPendingEvents counts only an id's first occurrence as inserted).
      const results = events.map((event) =>
        stored.delete(`${event.tenant_id}\u0000${event.event_id}`) ? event : undefined,
      );
      // The group's enqueue runs outside its slot, so a slow Redis never holds up the next INSERT; it never
      // throws, so a failed enqueue cannot make the group look failed (and be inserted again).
      const queued = enqueue(results.filter((event) => event !== undefined));
      return results.map((event) => ({ stored: event, queued }));
    },
    maxGroupSize: options.maxGroupSize ?? 64,
    maxInFlight: options.maxInFlight ?? 4,
    // Requests read off the network together share a group even while another could start at once.
    gatherWithinTurn: true,
    // One request's failure (a row Postgres refuses) never becomes its neighbours': they are tried alone.
    onGroupFailure: 'retry-each',
  });
  return async (events) => {
    if (events.length === 1) {
      const { stored, queued } = await singles.submit(events[0]!);
      await queued;
      return stored ? [stored] : [];
    }
    // A batch is already one statement and one job; grouping it with others would only tie its latency to theirs.
    const fresh = await insertPendingEvents(db, events);
    await enqueue(fresh);
    return fresh;
  };
}

/**
 * Enqueues stored events in one round trip: one event alone is an `event` job under its own id (tenant +
 * event id); more are one `events` job per tenant, its id derived from the tenant and the event ids. The
 * payloads were parsed by the catalog's schemas already. Never throws: a failure is logged and counted, and
 * the supervisor's poller enqueues the rows later.
 */
async function enqueueEvents(options: EventIngesterOptions, fresh: readonly TaskEvent[]): Promise<void> {
  const [first] = fresh;
  if (!first) return;
  const { queues } = options;
  const bulkOptions = { timeoutMs: options.enqueueTimeoutMs, validate: false };
  const queued = await enqueueAfterCommit(
    () => {
      if (fresh.length === 1)
        return queues.enqueueBulk(
          QUEUE_NAMES.supervisorEvents,
          'event',
          [{ payload: first, options: { jobId: eventJobId(first.tenant_id, first.event_id) } }],
          bulkOptions,
        );
      const byTenant = new Map<string, TaskEvent[]>();
      for (const event of fresh) {
        const events = byTenant.get(event.tenant_id);
        if (events) events.push(event);
        else byTenant.set(event.tenant_id, [event]);
      }
      return queues.enqueueBulk(
        QUEUE_NAMES.supervisorEvents,
        'events',
        [...byTenant].map(([tenantId, events]) => ({
          payload: { events },
          options: {
            jobId: eventBatchJobId(
              tenantId,
              events.map((event) => event.event_id),
            ),
          },
        })),
        bulkOptions,
      );
    },
    {
      logger: options.logger,
      fields: { module: 'ingest', count: fresh.length },
      message: 'events are durable but could not be enqueued now; the supervisor poller will pick them up',
    },
  );
  if (!queued) options.onEnqueueDeferred?.(fresh.length);
}
