import { createHash, randomUUID } from 'node:crypto';

/** What a content-derived id is computed from: everything the server stores about the event but its tenant. */
export interface EventContent {
  task_id: string;
  event_type: string;
  ts: string;
  payload?: Record<string, unknown> | undefined;
  trace_id?: string | undefined;
}

/** A fresh random event id (`evt-<uuid>`), for callers who want to choose and keep ids themselves. */
export function newEventId(): string {
  return `evt-${randomUUID()}`;
}

/**
 * An event id derived from the event's content (`evt-<32 hex of SHA-256>`): the same task, type, `ts`,
 * payload and trace id always give the same id, in any process, so an event re-sent after a crash or a
 * lost response is recognised as a duplicate. Payload keys are sorted first, so key order does not matter.
 */
export function deriveEventId(event: EventContent): string {
  const canonical = canonicalJson([
    event.task_id,
    event.event_type,
    event.ts,
    event.payload ?? {},
    event.trace_id ?? null,
  ]);
  return `evt-${createHash('sha256').update(canonical, 'utf8').digest('hex').slice(0, 32)}`;
}

/** JSON with object keys sorted at every depth, and `undefined` members dropped as JSON.stringify does. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, member: unknown) => {
    if (member === null || typeof member !== 'object' || Array.isArray(member)) return member;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(member).sort()) sorted[key] = (member as Record<string, unknown>)[key];
    return sorted;
  });
}
