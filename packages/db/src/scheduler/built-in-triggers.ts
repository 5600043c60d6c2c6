import { sql } from 'kysely';
import type { QueryExecutor } from '../database.js';

/**
 * The tenants that should get a built-in trigger and have never had one of that name: every tenant the lead
 * miner scans (a `tenants` row or an audit trail), paired with each of `eventNames` no trigger of the tenant
 * has ever used. A deleted trigger keeps its row (`deleted_at`), so a built-in trigger an operator deleted
 * stays deleted. One statement, whatever the number of tenants.
 */
export async function tenantsMissingBuiltInTriggers(
  db: QueryExecutor,
  eventNames: readonly string[],
): Promise<Array<{ tenant_id: string; event_name: string }>> {
  if (eventNames.length === 0) return [];
  const rows = await sql<{ tenant_id: string; event_name: string }>`
    with known as (select tenant_id from tenants union select tenant_id from audit_chain_heads)
    select known.tenant_id, wanted.event_name
      from known cross join unnest(${sql.val([...eventNames])}::text[]) as wanted(event_name)
     where not exists (select 1 from cron_triggers c
                        where c.tenant_id = known.tenant_id and c.event_name = wanted.event_name)
     order by known.tenant_id, wanted.event_name`.execute(db);
  return rows.rows;
}
