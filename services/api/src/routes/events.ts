import { Router } from 'express';
import { insertPendingEvents, type Db } from '@warden/db';
import {
  EventBatchSchema,
  ForbiddenError,
  IncomingEventSchema,
  parseOrThrow,
  toTaskEvent,
  type IncomingEvent,
  type IngestResult,
} from '@warden/domain';
import type { Logger } from '@warden/observability';
import { QUEUE_NAMES, eventBatchJobId, eventJobId, type WardenQueues } from '@warden/queue';
import { authOf, requireScope } from '../auth.js';
import type { ApiMetrics } from '../metrics.js';

export interface EventsRouteOptions {
  db: Db;
  queues: WardenQueues;
  logger: Logger;
  metrics: ApiMetrics;
  /** Give up on Redis after this long; the events are durable already. */
  enqueueTimeoutMs: number;
}

/** `{ events: [...] }` is a batch; anything else is read as one event. */
function readEvents(body: unknown): IncomingEvent[] {
  if (body !== null && typeof body === 'object' && !Array.isArray(body) && 'events' in body) {
    return parseOrThrow(EventBatchSchema, body, 'request body').events;
  }
  return [parseOrThrow(IncomingEventSchema, body, 'request body')];
}

/**
 * `POST /v1/events`: the ingest path. Events are durable in Postgres (inbox rows, `pending`) before the 202;
 * the enqueue that follows (one job for the request's new events) is an optimisation — if Redis is away the reply is still 202 and the supervisor's
 * poller enqueues the rows later. Duplicates (same tenant + event id, in the batch or from before) are
 * counted, not stored twice.
 */
export function eventsRouter(options: EventsRouteOptions): Router {
  const router = Router();
  router.post('/events', requireScope('events:write'), async (req, res) => {
    const auth = authOf(res);
    const incoming = readEvents(req.body);
    const foreign = incoming.flatMap((event, index) =>
      event.tenant_id !== undefined && event.tenant_id !== auth.tenantId
        ? [{ path: incoming.length > 1 || 'events' in req.body ? `events.${index}.tenant_id` : 'tenant_id', message: `names tenant "${event.tenant_id}", but this API key belongs to "${auth.tenantId}"` }]
        : [],
    );
    if (foreign.length > 0) throw new ForbiddenError('events may only be sent for the tenant of the API key', foreign);

    const receivedAt = new Date();
    const events = incoming.map((event) => toTaskEvent(event, auth.tenantId, 'http', receivedAt));
    const fresh = await insertPendingEvents(options.db, events);
    const result: IngestResult = { accepted: fresh.length, duplicates: events.length - fresh.length };
    options.metrics.eventsIngested.inc({ result: 'accepted' }, result.accepted);
    if (result.duplicates > 0) options.metrics.eventsIngested.inc({ result: 'duplicate' }, result.duplicates);

    if (fresh.length > 0) {
      try {
        // One job per request: a single event keeps its own job id (tenant + event id); a batch is one job
        // whose id derives from the tenant and its event ids. The payloads were parsed by the same schemas.
        const [first] = fresh;
        if (fresh.length === 1 && first) {
          await options.queues.enqueueBulk(QUEUE_NAMES.supervisorEvents, 'event', [{ payload: first, options: { jobId: eventJobId(first.tenant_id, first.event_id) } }], {
            timeoutMs: options.enqueueTimeoutMs,
            validate: false,
          });
        } else {
          const jobId = eventBatchJobId(auth.tenantId, fresh.map((event) => event.event_id));
          await options.queues.enqueueBulk(QUEUE_NAMES.supervisorEvents, 'events', [{ payload: { events: fresh }, options: { jobId } }], {
            timeoutMs: options.enqueueTimeoutMs,
            validate: false,
          });
        }
      } catch (error) {
        options.metrics.enqueueFailures.inc(fresh.length);
        options.logger.warn(
          { module: 'ingest', action: 'enqueue', status: 'deferred', count: fresh.length, error_code: 'enqueue_failed', err: error },
          'events are durable but could not be enqueued now; the supervisor poller will pick them up',
        );
      }
    }
    res.status(202).json(result);
  });
  return router;
}
