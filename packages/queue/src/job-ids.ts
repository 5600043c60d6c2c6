import { createHash } from 'node:crypto';

/**
 * The BullMQ job id of a task event: a digest of tenant and event id. Deterministic, so a second enqueue of
 * the same event while its job exists is ignored by BullMQ; hashed, because job ids may not contain `:` and
 * event ids may be any string.
 */
export function eventJobId(tenantId: string, eventId: string): string {
  return 'evt-' + createHash('sha256').update(tenantId).update('\u0000').update(eventId).digest('hex').slice(0, 40);
}
