import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson, sha256Hex } from './canonical-json.js';

/**
 * The tamper-evident audit trail. Each tenant's audit rows form a hash chain: a row's hash covers every column
 * stored for it (version 2), its position (`chain_seq`) and the previous row's hash, so editing, deleting or
 * reordering any row breaks the chain from that row on.
 *
 * The chain is unkeyed, so someone who can write the table could recompute all of it. Signed checkpoints close
 * that: an anchor is an HMAC-SHA256, under a key the database never holds (`WARDEN_AUDIT_KEY`), over one row's
 * (tenant, position, hash). A verifier holding the key checks that the chain still hashes to every anchor; only
 * rows written after the newest anchor can still be forged undetectably.
 */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * How a row's hash is computed.
 * - 1: rows written before migration `2026_12_01_0001_harden_audit_chain`: the content below without
 *   `hash_version`, `audit_id` and `created_at` (those two columns were not covered).
 * - 2: every column: the version itself, `audit_id` and `created_at` included.
 * Versions only go up along a chain: a version-1 row after a version-2 row is itself a break.
 */
export type AuditHashVersion = 1 | 2;
export const AUDIT_HASH_VERSION: AuditHashVersion = 2;

/** The fields of an audit row the hash covers: every stored column but the hashes themselves. */
export interface AuditChainContent {
  hash_version: number;
  audit_id: string;
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
  created_at: string;
}

/** Builds the hashed content from row values as the database returns them (Dates, bigint strings). */
export function toAuditChainContent(row: {
  hash_version: number | string;
  audit_id: string | number;
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
  created_at: Date;
}): AuditChainContent {
  return {
    hash_version: Number(row.hash_version),
    audit_id: String(row.audit_id),
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
    created_at: row.created_at.toISOString(),
  };
}

/**
 * The row's hash under its own `hash_version`. An unknown version hashes to a value no row can carry, so a row
 * whose version was edited to one that does not exist reads as edited.
 */
export function auditRowHash(content: AuditChainContent, prevHash: string): string {
  if (content.hash_version === 1) {
    // Exactly the pre-upgrade format, so chains written before the upgrade still verify.
    const { hash_version: _v, audit_id: _id, created_at: _created, ...v1 } = content;
    return sha256Hex(prevHash + '\n' + canonicalJson(v1));
  }
  if (content.hash_version === 2) return sha256Hex(prevHash + '\n' + canonicalJson(content));
  return 'unknown-hash-version';
}

export interface ChainedAuditRow extends AuditChainContent {
  prev_hash: string;
  row_hash: string;
}

/** What went wrong, one kind per way a chain can be tampered with. */
export type ChainProblemKind =
  | 'null_position'
  | 'gap'
  | 'duplicate'
  | 'out_of_order'
  | 'broken_link'
  | 'edited'
  | 'version_downgrade'
  | 'head_missing'
  | 'head_behind'
  | 'head_ahead'
  | 'head_mismatch'
  | 'anchor_forged'
  | 'anchor_unknown_key'
  | 'anchor_mismatch'
  | 'anchor_row_missing';

export interface ChainProblem {
  kind: ChainProblemKind;
  /** The row named, when there is one. */
  audit_id?: string;
  chain_seq?: number;
  message: string;
}

/** The first problem of a chain, in the shape callers of {@link findChainBreak} have always had. */
export interface ChainBreak {
  audit_id: string;
  chain_seq: number;
  reason: string;
}

/** Where a walk stands: the last position checked and the hash(es) stored there. */
export interface ChainPosition {
  chain_seq: number;
  row_hash: string;
}

/**
 * Walks one tenant's rows in chain order (as many pages as needed) and collects every problem. After a problem
 * it carries on from what is stored, so one edit is reported once and independent edits further on are found
 * too; a gap or duplicate is reported as such, not again as the broken link it causes.
 */
export class AuditChainWalker {
  /** The problems found, the first `maxProblems` of them. */
  readonly problems: ChainProblem[] = [];
  /** Problems found beyond `maxProblems` (counted, not kept: a recomputed chain can break at every anchor). */
  omitted = 0;
  /** Rows walked. */
  rows = 0;
  /** The last row walked (the genesis before any). */
  last: ChainPosition & { audit_id?: string };
  private linkHashes: Set<string>;
  private sawVersion2 = false;

  /**
   * @param previous where to start: the last verified row's position and hash. @defaultValue the genesis
   * @param maxProblems problems kept. @defaultValue `Infinity`
   */
  constructor(
    previous: ChainPosition = { chain_seq: 0, row_hash: GENESIS_HASH },
    private readonly maxProblems = Infinity,
  ) {
    this.last = { ...previous };
    this.linkHashes = new Set([previous.row_hash]);
  }

  /** Any failure found so far. */
  get failed(): boolean {
    return this.problems.length + this.omitted > 0;
  }

  /** Checks the next rows; they must come ordered by `chain_seq`. Returns the problems they added. */
  push(rows: readonly ChainedAuditRow[]): ChainProblem[] {
    const before = this.problems.length;
    for (const row of rows) this.pushRow(row);
    return this.problems.slice(before);
  }

  private pushRow(row: ChainedAuditRow): void {
    const at = { audit_id: row.audit_id, chain_seq: row.chain_seq };
    const expected = this.last.chain_seq + 1;
    let positionReported = false;
    if (this.rows > 0 && row.chain_seq === this.last.chain_seq) {
      this.add({
        kind: 'duplicate',
        ...at,
        message: `duplicate chain position ${row.chain_seq}: audit_id ${row.audit_id} and audit_id ${this.last.audit_id ?? '?'} claim it`,
      });
      // Either of the two may be the one the next row links to.
      this.linkHashes.add(row.row_hash);
      this.checkContent(row);
      this.rows += 1;
      return;
    }
    if (row.chain_seq > expected) {
      const missing = row.chain_seq - 1 === expected ? `${expected}` : `${expected}–${row.chain_seq - 1}`;
      this.add({
        kind: 'gap',
        ...at,
        message: `rows are missing at chain position ${missing} (before audit_id ${row.audit_id}): deleted`,
      });
      positionReported = true;
    } else if (row.chain_seq < expected) {
      this.add({
        kind: 'out_of_order',
        ...at,
        message: `expected chain position ${expected}, found ${row.chain_seq}: rows are out of order`,
      });
      positionReported = true;
    }
    if (!positionReported && !this.linkHashes.has(row.prev_hash)) {
      this.add({
        kind: 'broken_link',
        ...at,
        message: `prev_hash does not match the previous row (chain position ${this.last.chain_seq}): that row was changed and re-hashed, or replaced`,
      });
    }
    if (row.hash_version === 1 && this.sawVersion2) {
      this.add({
        kind: 'version_downgrade',
        ...at,
        message:
          'a version-1 (pre-upgrade) row after version-2 rows: its hash version was edited to hide an edit',
      });
    }
    if (row.hash_version === 2) this.sawVersion2 = true;
    this.checkContent(row);
    this.rows += 1;
    this.last = { chain_seq: row.chain_seq, row_hash: row.row_hash, audit_id: row.audit_id };
    this.linkHashes = new Set([row.row_hash]);
  }

  private checkContent(row: ChainedAuditRow): void {
    const { prev_hash, row_hash, ...content } = row;
    if (auditRowHash(content, prev_hash) !== row_hash) {
      this.add({
        kind: 'edited',
        audit_id: row.audit_id,
        chain_seq: row.chain_seq,
        message: 'content does not match its hash: the row was edited',
      });
    }
  }

  /** Records a problem found outside the rows themselves (head, anchors). */
  add(problem: ChainProblem): void {
    if (this.problems.length < this.maxProblems) this.problems.push(problem);
    else this.omitted += 1;
  }
}

/**
 * Checks rows of one tenant, in chain order, continuing from `previous` (the last verified row's seq and hash;
 * the genesis by default). Returns the first break, or undefined. Streaming callers feed it page by page.
 */
export function findChainBreak(
  rows: readonly ChainedAuditRow[],
  previous?: ChainPosition,
): ChainBreak | undefined {
  const first = new AuditChainWalker(previous).push(rows)[0];
  return first
    ? { audit_id: first.audit_id ?? '', chain_seq: first.chain_seq ?? 0, reason: first.message }
    : undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Signed checkpoints (anchors)

/** A key anchors are signed with. `id` is derived from the secret, so configuration needs only the secret. */
export interface AuditKey {
  id: string;
  secret: string;
}

/** Shortest secret accepted: 32 characters (e.g. `openssl rand -hex 32` gives 64). */
export const AUDIT_KEY_MIN_LENGTH = 32;

/** A key's public id: a one-way digest of the secret, so an anchor can say which key signed it. */
export function auditKeyId(secret: string): string {
  return sha256Hex('warden-audit-key-id\n' + secret).slice(0, 16);
}

/**
 * `WARDEN_AUDIT_KEY`: one secret, or several separated by commas (rotation). The first signs new anchors; all
 * of them verify. Unset or empty → no key (`[]`): nothing is anchored and verify says anchors were not checked.
 * @defaultValue `[]`
 */
export const auditKeysField = z
  .string()
  .optional()
  .transform((value, ctx): AuditKey[] => {
    const secrets = (value ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    for (const secret of secrets) {
      if (secret.length < AUDIT_KEY_MIN_LENGTH) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          message: `each key needs at least ${AUDIT_KEY_MIN_LENGTH} characters (e.g. openssl rand -hex 32)`,
        });
        return z.NEVER;
      }
    }
    return secrets.map((secret) => ({ id: auditKeyId(secret), secret }));
  });

/** What an anchor vouches for; every field of it is signed. */
export interface AuditAnchorContent {
  tenant_id: string;
  chain_seq: number;
  row_hash: string;
  key_id: string;
  anchored_at: string;
}

export interface AuditAnchor extends AuditAnchorContent {
  signature: string;
}

export function signAuditAnchor(key: AuditKey, content: Omit<AuditAnchorContent, 'key_id'>): AuditAnchor {
  const signed = { ...content, key_id: key.id };
  return { ...signed, signature: anchorMac(key.secret, signed) };
}

export type AnchorSignatureCheck = 'valid' | 'forged' | 'unknown_key';

/** Checks an anchor against the configured keys (by key id; constant-time comparison). */
export function checkAuditAnchorSignature(
  keys: readonly AuditKey[],
  anchor: AuditAnchor,
): AnchorSignatureCheck {
  const key = keys.find((k) => k.id === anchor.key_id);
  if (!key) return 'unknown_key';
  const { signature, ...content } = anchor;
  const expected = Buffer.from(anchorMac(key.secret, content), 'utf8');
  const actual = Buffer.from(signature, 'utf8');
  return expected.length === actual.length && timingSafeEqual(expected, actual) ? 'valid' : 'forged';
}

function anchorMac(secret: string, content: AuditAnchorContent): string {
  const { tenant_id, chain_seq, row_hash, key_id, anchored_at } = content;
  return createHmac('sha256', secret)
    .update(
      'warden-audit-anchor:v1\n' + canonicalJson({ tenant_id, chain_seq, row_hash, key_id, anchored_at }),
      'utf8',
    )
    .digest('hex');
}

/**
 * Checks one anchor: its signature, then that the chain still hashes to it (`row` is the row stored at its
 * position, if any; the walker has already checked that the rows up to it hash into one another).
 */
export function checkAuditAnchor(
  keys: readonly AuditKey[],
  anchor: AuditAnchor,
  row: (ChainPosition & { audit_id: string }) | undefined,
): ChainProblem | undefined {
  const at = `anchor at chain position ${anchor.chain_seq} (signed ${anchor.anchored_at} by key ${anchor.key_id})`;
  const signature = checkAuditAnchorSignature(keys, anchor);
  if (signature === 'unknown_key') {
    return {
      kind: 'anchor_unknown_key',
      chain_seq: anchor.chain_seq,
      message: `${at}: no configured key has that id: add the retired key to WARDEN_AUDIT_KEY, or the anchor was forged`,
    };
  }
  if (signature === 'forged') {
    return {
      kind: 'anchor_forged',
      chain_seq: anchor.chain_seq,
      message: `${at}: invalid signature: the anchor was forged or edited`,
    };
  }
  if (!row) {
    return {
      kind: 'anchor_row_missing',
      chain_seq: anchor.chain_seq,
      message: `${at}: no row at that position any more: anchored rows were deleted`,
    };
  }
  if (row.row_hash !== anchor.row_hash) {
    return {
      kind: 'anchor_mismatch',
      audit_id: row.audit_id,
      chain_seq: anchor.chain_seq,
      message: `${at}: the chain no longer hashes to it: rows at or before it were changed and the chain recomputed`,
    };
  }
  return undefined;
}
