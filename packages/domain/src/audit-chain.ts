import { canonicalJson, sha256Hex } from './canonical-json.js';

/**
 * The tamper-evident audit trail: each tenant's audit rows form a hash chain. A row's hash covers its content,
 * its position (`chain_seq`) and the previous row's hash, so editing, deleting or reordering any row breaks
 * the chain from that row on.
 */
export const GENESIS_HASH = '0'.repeat(64);

/** The fields of an audit row the hash covers (everything a reader relies on). */
export interface AuditChainContent {
  tenant_id: string;
  chain_seq: number;
  task_id: string;
  event_type: string;
  level: string;
  decision_id: string | null;
  event_id: string | null;
  source_event_ts: string | null;
  processed_at: string;
  payload: Record<string, unknown>;
}

/** Builds the hashed content from row values as the database returns them (Dates, bigint strings). */
export function toAuditChainContent(row: {
  tenant_id: string;
  chain_seq: number | string;
  task_id: string;
  event_type: string;
  level: string;
  decision_id: string | null;
  event_id: string | null;
  source_event_ts: Date | null;
  processed_at: Date;
  payload: Record<string, unknown>;
}): AuditChainContent {
  return {
    tenant_id: row.tenant_id,
    chain_seq: Number(row.chain_seq),
    task_id: row.task_id,
    event_type: row.event_type,
    level: row.level,
    decision_id: row.decision_id,
    event_id: row.event_id,
    source_event_ts: row.source_event_ts ? row.source_event_ts.toISOString() : null,
    processed_at: row.processed_at.toISOString(),
    payload: row.payload,
  };
}

export function auditRowHash(content: AuditChainContent, prevHash: string): string {
  return sha256Hex(prevHash + '\n' + canonicalJson(content));
}

export interface ChainedAuditRow extends AuditChainContent {
  audit_id: string;
  prev_hash: string;
  row_hash: string;
}

export interface ChainBreak {
  audit_id: string;
  chain_seq: number;
  reason: string;
}

/**
 * Checks rows of one tenant, in chain order, continuing from `previous` (the last verified row's seq and hash;
 * the genesis by default). Returns the first break, or undefined. Streaming callers feed it page by page.
 */
export function findChainBreak(
  rows: readonly ChainedAuditRow[],
  previous: { chain_seq: number; row_hash: string } = { chain_seq: 0, row_hash: GENESIS_HASH },
): ChainBreak | undefined {
  let expectedSeq = previous.chain_seq + 1;
  let prevHash = previous.row_hash;
  for (const row of rows) {
    if (row.chain_seq !== expectedSeq) {
      return { audit_id: row.audit_id, chain_seq: row.chain_seq, reason: `expected chain position ${expectedSeq}, found ${row.chain_seq}: rows are missing` };
    }
    if (row.prev_hash !== prevHash) {
      return { audit_id: row.audit_id, chain_seq: row.chain_seq, reason: 'prev_hash does not match the previous row: a row before it was changed or removed' };
    }
    const { audit_id: _id, prev_hash: _prev, row_hash: _hash, ...content } = row;
    if (auditRowHash(content, prevHash) !== row.row_hash) {
      return { audit_id: row.audit_id, chain_seq: row.chain_seq, reason: 'content does not match its hash: the row was edited' };
    }
    prevHash = row.row_hash;
    expectedSeq += 1;
  }
  return undefined;
}
