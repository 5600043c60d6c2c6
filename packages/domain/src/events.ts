import { z } from 'zod';
import { TenantIdSchema } from './scopes.js';
import { ActionProposedPayloadSchema } from './supervisor/action-proposal.js';
import { refuseUnstorableJson, unstorableTextProblem } from './validation.js';

/** Event types with a built-in policy; any other non-empty type is accepted and goes to the default policy. */
export const KNOWN_EVENT_TYPES = [
  'TASK_CREATED',
  'TASK_STEP_COMPLETED',
  'TASK_FAILED',
  'TASK_STATE_CHANGED',
  'TASK_ACTION_PROPOSED',
] as const;

/** How an event reached Warden: the fast path, the HTTP API, or the poller's safety net. */
export const EventSourceSchema = z.enum(['queue', 'http', 'polling']);
export type EventSource = z.infer<typeof EventSourceSchema>;

/** Ids are stored as text: NUL and lone surrogates are refused with the field's own path. */
const storableText = (value: string, ctx: z.core.$RefinementCtx): void => {
  const problem = unstorableTextProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
};

export const EventIdSchema = z.string().min(1).max(200).superRefine(storableText);
export const TaskIdSchema = z.string().min(1).max(200).superRefine(storableText);

/**
 * Task-id namespaces Warden files its own audit trails under (`changeset:<id>` for a change set's trail,
 * `trigger:<event_name>` for a cron trigger's) or keeps for later ones. A producer that could send events for
 * such a task id would append rows to a trail that is not a task's. Matched case-insensitively, so
 * `Changeset:x` cannot pass for a different id on a screen either. Ids that merely start alike
 * (`changesets-report`, `trigger-x`) are ordinary task ids.
 */
export const RESERVED_TASK_ID_PREFIXES = [
  'changeset:',
  'trigger:',
  'lead:',
  'scan:',
  'warden:',
  'system:',
] as const;

/** The reserved prefix `taskId` starts with, if any. */
export function reservedTaskIdPrefix(taskId: string): string | undefined {
  const lower = taskId.toLowerCase();
  return RESERVED_TASK_ID_PREFIXES.find((prefix) => lower.startsWith(prefix));
}

/** A task id a producer may send events for: a {@link TaskIdSchema} outside Warden's own namespaces. */
export const ProducerTaskIdSchema = TaskIdSchema.superRefine((value, ctx) => {
  const prefix = reservedTaskIdPrefix(value);
  if (prefix)
    ctx.addIssue({
      code: 'custom',
      message: `must not start with "${prefix}": task ids beginning with ${RESERVED_TASK_ID_PREFIXES.map((p) => `"${p}"`).join(', ')} are reserved for Warden's own audit trails`,
    });
});

/**
 * An ISO 8601 time with an offset that Postgres can also store: zod accepts year 0000 and offsets up to
 * ±23:59, Postgres' timestamptz neither (years start at 1 AD here, offsets end at ±15:59).
 */
export const EventTimeSchema = z.iso
  .datetime({ offset: true })
  .refine(
    (value) => !value.startsWith('0000-'),
    'year 0000 is not a date Postgres can store; years start at 0001',
  )
  .refine(
    (value) => !/[+-](1[6-9]|2\d)(:?\d\d)?$/.test(value),
    'the UTC offset must be between -15:59 and +15:59',
  );
export const EventTypeSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Z][A-Z0-9_]*$/, 'must be UPPER_SNAKE_CASE, e.g. TASK_CREATED');

/** A task event as Warden stores and processes it. */
export const TaskEventSchema = z
  .object({
    event_id: EventIdSchema,
    tenant_id: TenantIdSchema,
    task_id: TaskIdSchema,
    event_type: EventTypeSchema,
    ts: z.iso.datetime({ offset: true }),
    source: EventSourceSchema,
    payload: z.record(z.string(), z.unknown()),
    trace_id: z.string().max(200).optional(),
    // No depth bound here: events already in the inbox were accepted before there was one, and the walk is
    // iterative, so depth costs it nothing. New events are bounded on the way in (IncomingEventSchema).
  })
  .superRefine(refuseUnstorableJson({ maxDepth: Number.POSITIVE_INFINITY }));
export type TaskEvent = z.infer<typeof TaskEventSchema>;

/**
 * A proposed action the guard could not read would only ever get REQUIRE_REVIEW: the producer hears what is
 * wrong at once instead, at the field (`payload.action.hosts.0`). The policy still fails closed on any other path.
 */
function readableActionProposal(
  event: { event_type: string; payload: unknown },
  ctx: z.core.$RefinementCtx,
): void {
  if (event.event_type !== 'TASK_ACTION_PROPOSED') return;
  const result = ActionProposedPayloadSchema.safeParse(event.payload);
  if (result.success) return;
  for (const issue of result.error.issues)
    ctx.addIssue({ code: 'custom', message: issue.message, path: ['payload', ...issue.path] });
}

/**
 * An event as a producer sends it over HTTP. `tenant_id` comes from the API key (a body that names another
 * tenant is refused), `source` is `http`, `ts` defaults to the time it was received and `payload` to `{}`.
 */
export const IncomingEventSchema = z
  .object({
    event_id: EventIdSchema,
    tenant_id: TenantIdSchema.optional(),
    task_id: ProducerTaskIdSchema,
    event_type: EventTypeSchema,
    ts: EventTimeSchema.optional(),
    payload: z.record(z.string(), z.unknown()).default({}),
    trace_id: z.string().max(200).optional(),
    // Postgres cannot store NUL or a lone surrogate in text or jsonb, and a payload nested thousands deep is a
    // hazard to every recursive reader after us: refused here, at the offending path, without recursion.
  })
  .superRefine(refuseUnstorableJson())
  .superRefine(readableActionProposal);
export type IncomingEvent = z.infer<typeof IncomingEventSchema>;

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
export function toTaskEvent(
  incoming: IncomingEvent,
  tenantId: string,
  source: EventSource,
  receivedAt: Date,
): TaskEvent {
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
