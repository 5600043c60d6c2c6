/**
 * The decisions a tenant's supervisor recorded in monitor mode for one event type, read from their audit rows
 * (the hash-chained record every decision writes, with its `enforcement`, `event_type` and `would_have`):
 * the evidence `warden policy promote` weighs before an event type is enforced (docs/supervisor.md).
 */
import { sql } from 'kysely';
import { AUDIT_OF_DECISION, type MonitoredDecision } from '@warden/domain';
import type { QueryExecutor } from '../database.js';

export interface MonitoredDecisionWindow {
  tenantId: string;
  eventType: string;
  /** Decisions of events whose time is at or after this (`source_event_ts`, the lead miner's window too). */
  since: Date;
  /** Rows read per fetch. @defaultValue `5000` */
  pageSize?: number;
}

/** The audit types a decision is recorded under (SUPERVISOR_ALLOWED, …), one per decision type. */
const DECISION_AUDIT_TYPES = [...new Set(Object.values(AUDIT_OF_DECISION).map((a) => a.event_type))];

/**
 * Hands every decision of the window recorded in monitor mode to `onDecision`, oldest audit row first. One
 * query through a server-side cursor in a read-only transaction, over the index the lead miner reads by
 * (tenant, event time; decisions only): memory holds one page whatever the window's size. Finding codes
 * are read only for decisions enforcement would have changed, the only ones the evidence lists codes of.
 */
export async function readMonitoredDecisions(
  db: QueryExecutor,
  window: MonitoredDecisionWindow,
  onDecision: (decision: MonitoredDecision) => void,
): Promise<number> {
  const pageSize = window.pageSize ?? 5000;
  let read = 0;
  await db.transaction().execute(async (trx) => {
    await sql`set transaction read only`.execute(trx);
    await sql`declare monitored_decisions no scroll cursor for
      select task_id, coalesce(event_id, '') as event_id, decision_id,
             coalesce(payload ->> 'decision_type', '') as decision_type,
             payload ->> 'would_have' as would_have,
             case when payload ? 'would_have' and jsonb_typeof(payload -> 'findings') = 'array'
                  then array(select f ->> 'code' from jsonb_array_elements(payload -> 'findings') f
                              where f ->> 'code' is not null)
                  else '{}'::text[] end as finding_codes
        from task_audits
       where tenant_id = ${window.tenantId} and decision_id is not null
         and source_event_ts >= ${window.since}
         and event_type in (${sql.join(DECISION_AUDIT_TYPES)})
         and payload ->> 'event_type' = ${window.eventType}
         and payload ->> 'enforcement' = 'monitor'
       order by audit_id`.execute(trx);
    for (;;) {
      const { rows } = await sql<MonitoredDecision & { decision_id: string }>`
        fetch forward ${sql.lit(pageSize)} from monitored_decisions`.execute(trx);
      for (const row of rows) onDecision(row);
      read += rows.length;
      if (rows.length < pageSize) break;
    }
  });
  return read;
}
