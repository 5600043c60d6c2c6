import { createHash } from 'node:crypto';

/**
 * The BullMQ job id of a task event: a digest of tenant and event id. Deterministic, so a second enqueue of
 * the same event while its job exists is ignored by BullMQ; hashed, because job ids may not contain `:` and
 * event ids may be any string.
 */
export function eventJobId(tenantId: string, eventId: string): string {
  return (
    'evt-' + createHash('sha256').update(tenantId).update('\u0000').update(eventId).digest('hex').slice(0, 40)
  );
}

/**
 * The job id of a batch of one tenant's events: a digest of the tenant and the event ids, so the same request
 * enqueued twice is one job, whatever order its events came in.
 */
export function eventBatchJobId(tenantId: string, eventIds: readonly string[]): string {
  const hash = createHash('sha256').update(tenantId);
  for (const id of [...eventIds].sort()) hash.update('\u0000').update(id);
  return 'evts-' + hash.digest('hex').slice(0, 40);
}

/**
 * The BullMQ job id of a change set's execution: a digest of tenant and change-set id, so the API and the
 * executor's re-enqueue never put two live jobs on the queue for one change set.
 */
export function changesetJobId(tenantId: string, changesetId: string): string {
  return (
    'cs-' +
    createHash('sha256').update(tenantId).update('\u0000').update(changesetId).digest('hex').slice(0, 40)
  );
}

/**
 * The job id of a lead scan a trigger's handler call asked for: the call's attempt id, so dispatching the same
 * call twice (a repaired duplicate fire) adds one scan.
 */
export function leadScanCallJobId(attemptId: string): string {
  return `trigger-call-${attemptId}`;
}
