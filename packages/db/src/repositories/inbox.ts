import { sql, type Kysely, type Transaction } from 'kysely';
import type { TaskEvent } from '@warden/domain';
import type { Database } from '../database.js';

type Executor = Kysely<Database> | Transaction<Database>;

/**
 * Inserts events as `pending` inbox rows in one statement; an event id the tenant already sent (in this batch
 * or before) is skipped. Returns the events that were new, in input order — the ones to enqueue.
 */
export async function insertPendingEvents(db: Executor, events: readonly TaskEvent[]): Promise<TaskEvent[]> {
  if (events.length === 0) return [];
  // One array parameter per column (unnest) rather than a VALUES list of 8 × n parameters: the statement
  // stays the same size whatever the batch, so neither Kysely nor Postgres has a large query to build or plan.
  const column = <T>(pick: (event: TaskEvent) => T) => events.map(pick);
  const inserted = await sql<{ tenant_id: string; event_id: string }>`
    insert into supervisor_inbox (tenant_id, event_id, task_id, event_type, source, payload, trace_id, event_ts)
    select tenant_id, event_id, task_id, event_type, source, payload::jsonb, trace_id, event_ts
      from unnest(${column((e) => e.tenant_id)}::text[], ${column((e) => e.event_id)}::text[], ${column((e) => e.task_id)}::text[],
                  ${column((e) => e.event_type)}::text[], ${column((e) => e.source)}::text[], ${column((e) => JSON.stringify(e.payload))}::text[],
                  ${column((e) => e.trace_id ?? null)}::text[], ${column((e) => e.ts)}::timestamptz[])
           as e(tenant_id, event_id, task_id, event_type, source, payload, trace_id, event_ts)
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
