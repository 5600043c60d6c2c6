import type { Kysely } from 'kysely';
import { findChainBreak, toAuditChainContent, GENESIS_HASH, type ChainBreak } from '@warden/domain';
import type { Database } from '../database.js';

export interface ChainVerification {
  tenant_id: string;
  rows: number;
  /** The first broken row, if any. */
  broken?: ChainBreak;
}

/** Tenants that have an audit chain. */
export async function listChainTenants(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('audit_chain_heads').select('tenant_id').orderBy('tenant_id').execute();
  return rows.map((r) => r.tenant_id);
}

/**
 * Walks one tenant's chain in pages (memory stays flat however long it is) and reports the first broken row;
 * also checks the head, so deleting the newest rows is caught too.
 */
export async function verifyAuditChain(db: Kysely<Database>, tenantId: string, pageSize = 5000): Promise<ChainVerification> {
  let previous = { chain_seq: 0, row_hash: GENESIS_HASH };
  let rows = 0;
  let lastAuditId = '0';
  for (;;) {
    const page = await db
      .selectFrom('task_audits')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('chain_seq', 'is not', null)
      .where('chain_seq', '>', String(previous.chain_seq))
      .orderBy('chain_seq')
      .limit(pageSize)
      .execute();
    if (page.length === 0) break;
    const chained = page.map((row) => ({
      ...toAuditChainContent({ ...row, chain_seq: row.chain_seq!, level: row.level }),
      audit_id: row.audit_id,
      prev_hash: row.prev_hash ?? '',
      row_hash: row.row_hash ?? '',
    }));
    const broken = findChainBreak(chained, previous);
    if (broken) return { tenant_id: tenantId, rows: rows + chained.findIndex((r) => r.audit_id === broken.audit_id), broken };
    rows += page.length;
    const last = chained.at(-1)!;
    previous = { chain_seq: last.chain_seq, row_hash: last.row_hash };
    lastAuditId = last.audit_id;
    if (page.length < pageSize) break;
  }
  const head = await db.selectFrom('audit_chain_heads').select(['chain_seq', 'row_hash']).where('tenant_id', '=', tenantId).executeTakeFirst();
  if (head && (Number(head.chain_seq) !== previous.chain_seq || head.row_hash !== previous.row_hash)) {
    return {
      tenant_id: tenantId,
      rows,
      broken: { audit_id: lastAuditId, chain_seq: previous.chain_seq, reason: `the chain head is at position ${head.chain_seq} but the rows end at ${previous.chain_seq}: rows after ${lastAuditId} were removed or altered` },
    };
  }
  return { tenant_id: tenantId, rows };
}
