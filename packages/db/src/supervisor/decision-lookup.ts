import type { QueryExecutor } from '../database.js';
import type { DecisionView } from '../core/tasks.js';

/** A committed decision with the task it is about: what a request waiting on its events is answered with. */
export interface EventDecisionView extends DecisionView {
  task_id: string;
}

/**
 * The committed decisions on `eventIds` of one tenant, in the order of `eventIds` (events not decided yet are
 * left out). One indexed read: `decisions` is unique on (tenant_id, event_id).
 */
export async function findDecisionsForEvents(
  db: QueryExecutor,
  tenantId: string,
  eventIds: readonly string[],
): Promise<EventDecisionView[]> {
  if (eventIds.length === 0) return [];
  const rows = await db
    .selectFrom('decisions')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('event_id', 'in', [...eventIds])
    .execute();
  const byEvent = new Map(rows.map((row) => [row.event_id, row]));
  return eventIds.flatMap((eventId) => {
    const row = byEvent.get(eventId);
    if (!row) return [];
    return [
      {
        decision_id: row.decision_id,
        event_id: row.event_id,
        task_id: row.task_id,
        decision_type: row.decision_type,
        reason: row.reason,
        findings: row.findings,
        actions: row.actions,
        policy: row.policy,
        policy_version: row.policy_version,
        would_have: row.would_have,
        created_at: row.created_at.toISOString(),
      },
    ];
  });
}
