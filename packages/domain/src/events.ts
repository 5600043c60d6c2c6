import { z } from 'zod';
import { TenantIdSchema } from './scopes.js';

/** Event types with a built-in policy; any other non-empty type is accepted and goes to the default policy. */
export const KNOWN_EVENT_TYPES = ['TASK_CREATED', 'TASK_STEP_COMPLETED', 'TASK_FAILED', 'TASK_STATE_CHANGED'] as const;

/** How an event reached Warden: the fast path, the HTTP API, or the poller's safety net. */
export const EventSourceSchema = z.enum(['queue', 'http', 'polling']);
export type EventSource = z.infer<typeof EventSourceSchema>;

export const EventIdSchema = z.string().min(1).max(200);
export const TaskIdSchema = z.string().min(1).max(200);
export const EventTypeSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Z][A-Z0-9_]*$/, 'must be UPPER_SNAKE_CASE, e.g. TASK_CREATED');

/** A task event as Warden stores and processes it. */
export const TaskEventSchema = z.object({
  event_id: EventIdSchema,
  tenant_id: TenantIdSchema,
  task_id: TaskIdSchema,
  event_type: EventTypeSchema,
  ts: z.iso.datetime({ offset: true }),
  source: EventSourceSchema,
  payload: z.record(z.string(), z.unknown()),
  trace_id: z.string().max(200).optional(),
}).superRefine(refuseNulCharacters);
export type TaskEvent = z.infer<typeof TaskEventSchema>;

/**
 * An event as a producer sends it over HTTP. `tenant_id` comes from the API key (a body that names another
 * tenant is refused), `source` is `http`, `ts` defaults to the time it was received and `payload` to `{}`.
 */
export const IncomingEventSchema = z.object({
  event_id: EventIdSchema,
  tenant_id: TenantIdSchema.optional(),
  task_id: TaskIdSchema,
  event_type: EventTypeSchema,
  ts: z.iso.datetime({ offset: true }).optional(),
  payload: z.record(z.string(), z.unknown()).default({}),
  trace_id: z.string().max(200).optional(),
}).superRefine(refuseNulCharacters);
export type IncomingEvent = z.infer<typeof IncomingEventSchema>;

/**
 * Postgres cannot store the NUL character in text or jsonb; an event carrying one would fail at insert. It is
 * refused up front, with the path of the offending field, instead.
 */
function refuseNulCharacters(value: Record<string, unknown>, ctx: z.core.$RefinementCtx): void {
  const walk = (node: unknown, path: Array<string | number>): void => {
    if (typeof node === 'string') {
      if (node.includes('\u0000')) ctx.addIssue({ code: 'custom', message: 'must not contain the NUL character (\\u0000)', path });
    } else if (Array.isArray(node)) {
      node.forEach((item, index) => walk(item, [...path, index]));
    } else if (node !== null && typeof node === 'object') {
      for (const [key, inner] of Object.entries(node)) {
        if (key.includes('\u0000')) ctx.addIssue({ code: 'custom', message: 'keys must not contain the NUL character', path });
        walk(inner, [...path, key]);
      }
    }
  };
  walk(value, []);
}

/** The most events one `POST /v1/events` may carry. */
export const MAX_EVENTS_PER_BATCH = 500;

/** `POST /v1/events` takes one event or `{ events: [...] }` with 1 to 500 events. */
export const EventBatchSchema = z.object({
  events: z.array(IncomingEventSchema).min(1).max(MAX_EVENTS_PER_BATCH),
});

export const IngestResultSchema = z.object({
  accepted: z.number().int(),
  duplicates: z.number().int(),
});
export type IngestResult = z.infer<typeof IngestResultSchema>;

/** Completes an incoming event with the caller's tenant, the source and the time of receipt. */
export function toTaskEvent(incoming: IncomingEvent, tenantId: string, source: EventSource, receivedAt: Date): TaskEvent {
  return {
    event_id: incoming.event_id,
    tenant_id: tenantId,
    task_id: incoming.task_id,
    event_type: incoming.event_type,
    ts: incoming.ts ?? receivedAt.toISOString(),
    source,
    payload: incoming.payload,
    ...(incoming.trace_id === undefined ? {} : { trace_id: incoming.trace_id }),
  };
}
