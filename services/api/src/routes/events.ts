import { z } from 'zod';
import {
  ActionSchema,
  canonicalJson,
  DecisionTypeSchema,
  EventBatchSchema,
  FindingSchema,
  ForbiddenError,
  IncomingEventSchema,
  IngestResultSchema,
  parseOrThrow,
  ValidationError,
  toTaskEvent,
  type IncomingEvent,
  type IngestResult,
  type TaskEvent,
} from '@warden/domain';
import { activeTraceId } from '@warden/observability';
import { defineRoute, reply, type Route } from '../define-route.js';
import { replyAfterWait, startWait } from '../decision-wait.js';
import { MAX_PREFER_WAIT_SECONDS, preferredWaitSeconds } from '../prefer-wait.js';

const Event = IncomingEventSchema.meta({ id: 'IncomingEvent' });
const Batch = EventBatchSchema.meta({ id: 'EventBatch' });
const EventDecision = z
  .object({
    decision_id: z.string(),
    event_id: z.string(),
    task_id: z.string(),
    decision_type: DecisionTypeSchema,
    reason: z.string(),
    findings: z.array(FindingSchema),
    actions: z.array(ActionSchema),
    policy: z.string(),
    policy_version: z.string(),
    would_have: z.string().nullable(),
    created_at: z.string(),
  })
  .meta({ id: 'EventDecision' });
const WaitedIngestResult = IngestResultSchema.extend({
  decisions: z.array(EventDecision).meta({ description: "The committed decisions on the request's events" }),
  pending: z.array(z.string()).meta({ description: 'Event ids not decided when the wait ran out' }),
}).meta({ id: 'WaitedIngestResult' });

/** `{ events: [...] }` is a batch; anything else is read as one event. */
function readEvents(body: unknown): { events: IncomingEvent[]; batch: boolean } {
  if (body !== null && typeof body === 'object' && !Array.isArray(body) && 'events' in body) {
    // An event's fields beside `events` would be one more event, silently dropped: refused, naming them.
    const beside = Object.keys(body).filter((key) => key !== 'events');
    if (beside.length > 0) {
      const message = `a batch is { events: [...] } only; move ${beside.join(', ')} into an event of the list`;
      throw new ValidationError(`invalid request body: ${message}`, [{ path: beside[0]!, message }]);
    }
    const { events } = parseOrThrow(Batch, body, 'request body');
    rejectConflictingDuplicates(events);
    return { events, batch: true };
  }
  return { events: [parseOrThrow(Event, body, 'request body')], batch: false };
}

/**
 * The same event twice in one batch is a duplicate, counted as such; the same event id with different content
 * is a client's mistake that would keep one of the two silently, so it is refused, naming the second.
 */
function rejectConflictingDuplicates(events: readonly IncomingEvent[]): void {
  // Content is compared only when an id comes back, so a batch without duplicates pays one Map.
  const seen = new Map<string, IncomingEvent>();
  events.forEach((event, i) => {
    const first = seen.get(event.event_id);
    if (first === undefined) seen.set(event.event_id, event);
    else if (canonicalJson(first) !== canonicalJson(event)) {
      const message = `event id ${event.event_id} is given twice in the batch with different content`;
      throw new ValidationError(`invalid request body: events.${i}.event_id: ${message}`, [
        { path: `events.${i}.event_id`, message },
      ]);
    }
  });
}

/**
 * `POST /v1/events`: the ingest path. Events are durable in Postgres (inbox rows, `pending`) before the 202;
 * the enqueue that follows (one job for the request's new events, or for a group of concurrent single-event
 * requests: event-ingester.ts) is an optimisation — if Redis is away the reply is still 202 and the
 * supervisor's poller enqueues the rows later. Duplicates (same tenant + event id,
 * in the batch or from before) are counted, not stored twice.
 */
export const eventRoutes: Route[] = [
  defineRoute(
    {
      method: 'post',
      path: '/v1/events',
      scope: 'events:write',
      summary: 'Send one task event or a batch of up to 500',
      description: `Answers 202 once every event is durable in Postgres. \`tenant_id\` comes from the API key.

With \`Prefer: wait=<seconds>\` (RFC 7240; capped at ${MAX_PREFER_WAIT_SECONDS} s) the request also waits for the supervisor's decisions on its events: **200** with every decision once all are committed, or **202** with those committed so far and the ids still \`pending\` when the wait runs out — pending is never allowed. The reply then carries \`Preference-Applied: wait=<applied>\`. A malformed \`wait\` (not whole seconds) is ignored, as the RFC asks: no wait, no \`Preference-Applied\`. Used to guard an action before it runs (\`TASK_ACTION_PROPOSED\`, docs/supervisor.md).`,
      body: { schema: z.union([Event, Batch]), read: readEvents },
      responses: {
        200: {
          description: 'With `Prefer: wait`: every event decided; the decisions',
          schema: WaitedIngestResult,
        },
        202: {
          description:
            'Accepted (new) and duplicate event counts; with `Prefer: wait`, also the decisions so far and the event ids still pending',
          schema: z.union([IngestResultSchema.meta({ id: 'IngestResult' }), WaitedIngestResult]),
        },
        413: 'Body too large',
      },
    },
    async ({ body, auth, deps, headers }) => {
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
      // With tracing on, an event that names no trace_id of its own carries the request's W3C trace id: the
      // supervisor's decision log lines and the archive then point at the trace (docs/observability.md).
      const traceId = activeTraceId();
      const events = incoming.map((event) =>
        toTaskEvent(
          traceId !== undefined && event.trace_id === undefined ? { ...event, trace_id: traceId } : event,
          auth.tenantId,
          'http',
          receivedAt,
        ),
      );
      const wait = startWait(
        deps,
        auth.tenantId,
        [...new Set(events.map((event) => event.event_id))],
        preferredWaitSeconds(headers.prefer),
      );
      let fresh: TaskEvent[];
      try {
        fresh = await deps.ingestEvents(events);
      } catch (error) {
        wait?.close();
        throw error;
      }
      const result: IngestResult = { accepted: fresh.length, duplicates: events.length - fresh.length };
      deps.metrics.eventsIngested.inc({ result: 'accepted' }, result.accepted);
      if (result.duplicates > 0) deps.metrics.eventsIngested.inc({ result: 'duplicate' }, result.duplicates);
      return wait ? replyAfterWait(wait, result) : reply(202, result);
    },
  ),
];
