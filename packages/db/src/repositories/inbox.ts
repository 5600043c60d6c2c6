import type { Kysely, Transaction } from 'kysely';
import type { TaskEvent } from '@warden/domain';
import type { Database } from '../database.js';

type Executor = Kysely<Database> | Transaction<Database>;

/**
 * Inserts events as `pending` inbox rows in one statement; an event id the tenant already sent (in this batch
 * or before) is skipped. Returns the events that were new, in input order — the ones to enqueue.
 */
export async function insertPendingEvents(db: Executor, events: readonly TaskEvent[]): Promise<TaskEvent[]> {
  if (events.length === 0) return [];
  const inserted = await db
    .insertInto('supervisor_inbox')
    .values(
      events.map((event) => ({
        tenant_id: event.tenant_id,
        event_id: event.event_id,
        task_id: event.task_id,
        event_type: event.event_type,
        source: event.source,
        payload: JSON.stringify(event.payload),
        trace_id: event.trace_id ?? null,
        event_ts: event.ts,
      })),
    )
    .onConflict((oc) => oc.columns(['tenant_id', 'event_id']).doNothing())
    .returning(['tenant_id', 'event_id'])
    .execute();
  const fresh = new Set(inserted.map((row) => `${row.tenant_id}\u0000${row.event_id}`));
  // Within one batch the same id may appear twice; only its first occurrence is the inserted one.
  const result: TaskEvent[] = [];
  for (const event of events) {
    const key = `${event.tenant_id}\u0000${event.event_id}`;
    if (fresh.delete(key)) result.push(event);
  }
  return result;
}

export interface InboxCounts {
  pending: number;
  processing: number;
  completed: number;
  failed: number;
  dead: number;
}

/** Inbox rows by status, optionally for one tenant. */
export async function countInboxByStatus(db: Executor, tenantId?: string): Promise<InboxCounts> {
  let query = db.selectFrom('supervisor_inbox').select(['status', db.fn.countAll<string>().as('n')]).groupBy('status');
  if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
  const rows = await query.execute();
  const counts: InboxCounts = { pending: 0, processing: 0, completed: 0, failed: 0, dead: 0 };
  for (const row of rows) counts[row.status as keyof InboxCounts] = Number(row.n);
  return counts;
}
