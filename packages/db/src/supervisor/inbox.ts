import { sql } from 'kysely';
import type { TaskEvent } from '@warden/domain';
import type { QueryExecutor } from '../database.js';

/**
 * Inserts events as `pending` inbox rows in one statement; an event id the tenant already sent (in this batch
 * or before) is skipped. Returns the events that were new, in input order — the ones to enqueue.
 */
export async function insertPendingEvents(
  db: QueryExecutor,
  events: readonly TaskEvent[],
): Promise<TaskEvent[]> {
  if (events.length === 0) return [];
  // The batch travels as one JSON document rather than a VALUES list of 8 × n parameters (the statement stays
  // the same size whatever the batch) or one array per column (node-postgres escapes array elements in
  // JavaScript, character by character: slower than the insert itself). Rows come out in input order, which
  // is the inbox order the supervisor applies a task's events in.
  const rows = events.map(toInboxRecord);
  const inserted = await sql<{ tenant_id: string; event_id: string }>`
    insert into supervisor_inbox (tenant_id, event_id, task_id, event_type, source, payload, trace_id, event_ts)
    select tenant_id, event_id, task_id, event_type, source, payload, trace_id, event_ts
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
           as e(tenant_id text, event_id text, task_id text, event_type text, source text, payload jsonb, trace_id text, event_ts timestamptz)
    on conflict (tenant_id, event_id) do nothing
    returning tenant_id, event_id`.execute(db);
  const fresh = new Set(inserted.rows.map((row) => `${row.tenant_id}\u0000${row.event_id}`));
  // Within one batch the same id may appear twice; only its first occurrence is the inserted one.
  const result: TaskEvent[] = [];
  for (const event of events) {
    const key = `${event.tenant_id}\u0000${event.event_id}`;
    if (fresh.delete(key)) result.push(event);
  }
  return result;
}

/** An event as a record of the inbox's columns, for `jsonb_to_recordset`. */
export function toInboxRecord(e: TaskEvent) {
  return {
    tenant_id: e.tenant_id,
    event_id: e.event_id,
    task_id: e.task_id,
    event_type: e.event_type,
    source: e.source,
    payload: e.payload,
    trace_id: e.trace_id ?? null,
    event_ts: e.ts,
  };
}

export interface InboxCounts {
  pending: number;
  processing: number;
  completed: number;
  failed: number;
  dead: number;
}

/** Inbox rows by status, optionally for one tenant. */
export async function countInboxByStatus(db: QueryExecutor, tenantId?: string): Promise<InboxCounts> {
  let query = db
    .selectFrom('supervisor_inbox')
    .select(['status', db.fn.countAll<string>().as('n')])
    .groupBy('status');
  if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
  const rows = await query.execute();
  const counts: InboxCounts = { pending: 0, processing: 0, completed: 0, failed: 0, dead: 0 };
  for (const row of rows) counts[row.status as keyof InboxCounts] = Number(row.n);
  return counts;
}
