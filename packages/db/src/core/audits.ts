import { sql } from 'kysely';
import {
  AUDIT_HASH_VERSION,
  auditRowHash,
  GENESIS_HASH,
  toAuditChainContent,
  type AuditLevel,
} from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import type { TaskKey } from './tasks.js';

export interface NewAudit extends TaskKey {
  event_type: string;
  level: AuditLevel;
  decision_id: string | null;
  event_id: string | null;
  source_event_ts: Date | null;
  payload: Record<string, unknown>;
}

/**
 * Appends audit rows to their tenants' hash chains, in the order given. Locks each tenant's chain head for the
 * rest of the transaction (tenants in sorted order), so a chain grows one transaction at a time; batching
 * many rows into one call is what keeps that cheap.
 *
 * Two round trips, whatever the number of rows: (1) create missing heads, lock every head and, once a
 * tenant's head is locked, allocate that tenant's `audit_id`s and `created_at`, so both are known before
 * hashing (they are hashed: version 2) and a tenant's ids grow in commit order; (2) insert the rows and move
 * the heads in one statement.
 *
 * Returns the rows' `audit_id`s, in the order given (for traces and logs: callers need not read them back).
 */
export async function appendAudits(
  trx: QueryExecutor,
  audits: readonly NewAudit[],
  processedAt = new Date(),
): Promise<string[]> {
  if (audits.length === 0) return [];
  const counts = new Map<string, number>();
  for (const audit of audits) counts.set(audit.tenant_id, (counts.get(audit.tenant_id) ?? 0) + 1);
  const tenants = [...counts.keys()].sort();
  const heads = await lockChainHeads(
    trx,
    tenants,
    tenants.map((t) => counts.get(t)!),
  );
  const state = new Map(
    heads.map((h) => [
      h.tenant_id,
      { seq: Number(h.chain_seq), hash: h.row_hash, ids: sortIds(h.audit_ids), createdAt: h.created_at },
    ]),
  );
  const rows = audits.map((audit) => {
    const head = state.get(audit.tenant_id)!;
    const content = toAuditChainContent({
      ...audit,
      hash_version: AUDIT_HASH_VERSION,
      audit_id: head.ids.shift()!,
      chain_seq: head.seq + 1,
      processed_at: processedAt,
      created_at: head.createdAt,
    });
    const rowHash = auditRowHash(content, head.hash);
    const row = {
      ...content,
      payload: audit.payload,
      source_event_ts: audit.source_event_ts,
      processed_at: processedAt,
      created_at: head.createdAt,
      prev_hash: head.hash,
      row_hash: rowHash,
    };
    head.seq = content.chain_seq;
    head.hash = rowHash;
    return row;
  });
  const finalHeads = [...state.entries()];
  // The rows travel as one JSON document, not one array parameter per column: node-postgres escapes array
  // elements in JavaScript, character by character, which cost more than the rest of the append together.
  // The CTE runs to completion whether or not the update reads it (Postgres runs data-modifying CTEs once).
  await sql`
    with inserted as (
      insert into task_audits (audit_id, tenant_id, task_id, event_type, level, decision_id, event_id, source_event_ts,
                               processed_at, payload, created_at, chain_seq, prev_hash, row_hash, hash_version)
      select audit_id, tenant_id, task_id, event_type, level, decision_id, event_id, source_event_ts,
             processed_at, payload, created_at, chain_seq, prev_hash, row_hash, hash_version
        from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
             as r(audit_id bigint, tenant_id text, task_id text, event_type text, level text, decision_id text, event_id text,
                  source_event_ts timestamptz, processed_at timestamptz, payload jsonb, created_at timestamptz, chain_seq bigint,
                  prev_hash text, row_hash text, hash_version smallint)
    )
    update audit_chain_heads as h set chain_seq = v.seq, row_hash = v.hash, updated_at = now()
      from unnest(${finalHeads.map(([t]) => t)}::text[], ${finalHeads.map(([, s]) => s.seq)}::bigint[], ${finalHeads.map(([, s]) => s.hash)}::text[]) as v(tenant_id, seq, hash)
     where h.tenant_id = v.tenant_id`.execute(trx);
  return rows.map((row) => String(row.audit_id));
}

/**
 * Creates the missing heads and locks all of them, in the order given (sorted: no deadlocks). For each head,
 * after its lock is held, allocates `count` audit ids and reads the clock (to the millisecond, what a JS Date
 * holds, so the hashed `created_at` is exactly the stored one).
 */
async function lockChainHeads(trx: QueryExecutor, tenants: readonly string[], counts: readonly number[]) {
  const result = await sql<{
    tenant_id: string;
    chain_seq: string;
    row_hash: string;
    audit_ids: string[];
    created_at: Date;
  }>`
    insert into audit_chain_heads as h (tenant_id, chain_seq, row_hash)
    select t, 0, ${GENESIS_HASH} from unnest(${tenants}::text[]) with ordinality as u(t, n) order by n
    on conflict (tenant_id) do update set updated_at = h.updated_at
    returning h.tenant_id, h.chain_seq, h.row_hash,
              array(select nextval('task_audits_audit_id_seq')::text
                      from generate_series(1, (${counts}::int[])[array_position(${tenants}::text[], h.tenant_id)])) as audit_ids,
              date_trunc('milliseconds', clock_timestamp()) as created_at`.execute(trx);
  return result.rows;
}

/** Ids in allocation order, so a tenant's rows get ascending ids along the chain. */
function sortIds(ids: readonly string[]): string[] {
  return [...ids].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0));
}
