import { z } from 'zod';
import { insertPendingEvents } from '@warden/db';
import {
  EventBatchSchema,
  ForbiddenError,
  IncomingEventSchema,
  IngestResultSchema,
  parseOrThrow,
  toTaskEvent,
  type IncomingEvent,
  type IngestResult,
} from '@warden/domain';
import { QUEUE_NAMES, eventBatchJobId, eventJobId } from '@warden/queue';
import { defineRoute, reply, type Route } from '../define-route.js';
import { enqueueAfterCommit } from '../enqueue-after-commit.js';

const Event = IncomingEventSchema.meta({ id: 'IncomingEvent' });
const Batch = EventBatchSchema.meta({ id: 'EventBatch' });

/** `{ events: [...] }` is a batch; anything else is read as one event. */
function readEvents(body: unknown): { events: IncomingEvent[]; batch: boolean } {
  if (body !== null && typeof body === 'object' && !Array.isArray(body) && 'events' in body) {
    return { events: parseOrThrow(Batch, body, 'request body').events, batch: true };
  }
  return { events: [parseOrThrow(Event, body, 'request body')], batch: false };
}

/**
 * `POST /v1/events`: the ingest path. Events are durable in Postgres (inbox rows, `pending`) before the 202;
 * the enqueue that follows (one job for the request's new events) is an optimisation — if Redis is away the
 * reply is still 202 and the supervisor's poller enqueues the rows later. Duplicates (same tenant + event id,
 * in the batch or from before) are counted, not stored twice.
 */
export const eventRoutes: Route[] = [
  defineRoute(
    {
      method: 'post',
      path: '/v1/events',
      scope: 'events:write',
      summary: 'Send one task event or a batch of up to 500',
      description: 'Answers 202 once every event is durable in Postgres. `tenant_id` comes from the API key.',
      body: { schema: z.union([Event, Batch]), read: readEvents },
      responses: {
        202: {
          description: 'Accepted (new) and duplicate event counts',
          schema: IngestResultSchema.meta({ id: 'IngestResult' }),
        },
        413: 'Body too large',
      },
    },
    async ({ body, auth, deps }) => {
      const incoming = body.events;
      const foreign = incoming.flatMap((event, index) =>
        event.tenant_id !== undefined && event.tenant_id !== auth.tenantId
          ? [
              {
                path: body.batch ? `events.${index}.tenant_id` : 'tenant_id',
                message: `names tenant "${event.tenant_id}", but this API key belongs to "${auth.tenantId}"`,
              },
            ]
          : [],
      );
      if (foreign.length > 0)
        throw new ForbiddenError('events may only be sent for the tenant of the API key', foreign);

      const receivedAt = new Date();
      const events = incoming.map((event) => toTaskEvent(event, auth.tenantId, 'http', receivedAt));
      const fresh = await insertPendingEvents(deps.db, events);
      const result: IngestResult = { accepted: fresh.length, duplicates: events.length - fresh.length };
      deps.metrics.eventsIngested.inc({ result: 'accepted' }, result.accepted);
      if (result.duplicates > 0) deps.metrics.eventsIngested.inc({ result: 'duplicate' }, result.duplicates);

      const [first] = fresh;
      if (first) {
        // One job per request: a single event keeps its own job id (tenant + event id); a batch is one job
        // whose id derives from the tenant and its event ids. The payloads were parsed by the same schemas.
        const options = { timeoutMs: deps.enqueueTimeoutMs, validate: false };
        const queued = await enqueueAfterCommit(
          () =>
            fresh.length === 1
              ? deps.queues.enqueueBulk(
                  QUEUE_NAMES.supervisorEvents,
                  'event',
                  [{ payload: first, options: { jobId: eventJobId(first.tenant_id, first.event_id) } }],
                  options,
                )
              : deps.queues.enqueueBulk(
                  QUEUE_NAMES.supervisorEvents,
                  'events',
                  [
                    {
                      payload: { events: fresh },
                      options: {
                        jobId: eventBatchJobId(
                          auth.tenantId,
                          fresh.map((event) => event.event_id),
                        ),
                      },
                    },
                  ],
                  options,
                ),
          {
            logger: deps.logger,
            fields: { module: 'ingest', count: fresh.length },
            message:
              'events are durable but could not be enqueued now; the supervisor poller will pick them up',
          },
        );
        if (!queued) deps.metrics.enqueueFailures.inc(fresh.length);
      }
      return reply(202, result);
    },
  ),
];
