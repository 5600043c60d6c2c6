import { sql } from 'kysely';
import {
  AuditChainWalker,
  checkAuditAnchor,
  checkAuditAnchorSignature,
  signAuditAnchor,
  toAuditChainContent,
  GENESIS_HASH,
  type AuditAnchor,
  type AuditKey,
  type ChainBreak,
  type ChainPosition,
  type ChainProblem,
  type ChainedAuditRow,
} from '@warden/domain';
import type { AuditRow, QueryExecutor } from '../database.js';

export interface ChainVerification {
  tenant_id: string;
  /** Rows walked (those with a chain position). */
  rows: number;
  /** Position of the last row (0 when there are none). */
  last_seq: number;
  /** The head recorded in `audit_chain_heads`, or null when there is none. */
  head: ChainPosition | null;
  /** The first problem, if any (kept for callers that only ask "is it broken"). */
  broken?: ChainBreak;
  /** Every problem found, in chain order (head and anchor problems last), the first `maxProblems` of them. */
  problems: ChainProblem[];
  /** Problems found beyond `maxProblems`. */
  omitted_problems: number;
  anchors: {
    /** False when no key was given: the chain was checked for consistency only, not against the anchors. */
    checked: boolean;
    /** Anchors of this tenant checked (0 when not checked). */
    count: number;
    /** Position of the newest anchor whose signature verified and whose row still hashes to it. */
    last_anchored_seq: number | null;
    /** Rows after that anchor: information, not a failure (the poller anchors them within its interval). */
    unanchored_rows: number;
  };
}

export interface VerifyAuditChainOptions {
  /** Keys to check anchors with; without any, anchors are not checked. @defaultValue `[]` */
  keys?: readonly AuditKey[];
  /** Rows read per query; memory stays flat however long the chain is. @defaultValue `5000` */
  pageSize?: number;
  /** Problems kept per tenant (the rest are counted). @defaultValue `50` */
  maxProblems?: number;
}

/**
 * Tenants to verify: every tenant with a chain head, an audit row (found by a skip scan of the chain index,
 * not a scan of the table) or an anchor, so deleting a tenant's head row does not drop it from the check.
 */
export async function listChainTenants(db: QueryExecutor): Promise<string[]> {
  const { rows } = await sql<{ tenant_id: string }>`
    with recursive audited(tenant_id) as (
      (select tenant_id from task_audits order by tenant_id limit 1)
      union all
      select (select t.tenant_id from task_audits t where t.tenant_id > audited.tenant_id order by t.tenant_id limit 1)
        from audited where audited.tenant_id is not null
    )
    select tenant_id from audited where tenant_id is not null
    union select tenant_id from audit_chain_heads
    union select distinct tenant_id from audit_anchors
    order by tenant_id`.execute(db);
  return rows.map((r) => r.tenant_id);
}

/**
 * Checks that don't belong to one tenant: the constraints the chain relies on are still there, and no row
 * was set aside by the 2026_12_01 migration for having no chain position. Each string names one failure.
 */
export async function checkAuditStore(db: QueryExecutor): Promise<string[]> {
  const failures: string[] = [];
  const { rows: columns } = await sql<{ column_name: string; is_nullable: string }>`
    select column_name, is_nullable from information_schema.columns
     where table_schema = current_schema() and table_name = 'task_audits' and column_name in ('chain_seq', 'prev_hash', 'row_hash', 'hash_version')`.execute(
    db,
  );
  for (const column of columns) {
    if (column.is_nullable === 'YES')
      failures.push(
        `task_audits.${column.column_name} accepts NULL again: its NOT NULL constraint was dropped`,
      );
  }
  const { rows: constraints } = await sql<{ conname: string }>`
    select conname from pg_constraint where conrelid = 'task_audits'::regclass and conname = 'task_audits_chain_key'`.execute(
    db,
  );
  if (constraints.length === 0)
    failures.push(
      'the unique constraint task_audits_chain_key (one row per tenant and chain position) was dropped',
    );
  const { rows: unchained } = await sql<{ count: string; tenants: string[] }>`
    select count(*)::text as count, coalesce(array_agg(distinct tenant_id), '{}') as tenants from task_audits_unchained`.execute(
    db,
  );
  const count = Number(unchained[0]?.count ?? 0);
  if (count > 0) {
    failures.push(
      `${count} audit row(s) without a chain position (tenants ${unchained[0]!.tenants.join(', ')}) were moved to task_audits_unchained by the ` +
        'upgrade: written outside Warden or forged; review them, then delete them from task_audits_unchained',
    );
  }
  return failures;
}

/**
 * Verifies one tenant's chain: positions gap-free from 1, every row linked to the one before and hashing to
 * its content, the head in `audit_chain_heads` exactly at the last row, and (given keys) every anchor signed
 * by a known key and still matched by the chain. Walks in pages; reads only.
 */
export async function verifyAuditChain(
  db: QueryExecutor,
  tenantId: string,
  options: VerifyAuditChainOptions = {},
): Promise<ChainVerification> {
  const { keys = [], pageSize = 5000, maxProblems = 50 } = options;
  const walker = new AuditChainWalker(undefined, maxProblems);
  const checkAnchors = keys.length > 0;
  let anchorCount = 0;
  let lastAnchored: number | null = null;

  // Rows with no position are outside the chain (only possible once the NOT NULL constraint is gone).
  const { rows: unpositioned } = await sql<{ audit_id: string }>`
    select audit_id from task_audits where tenant_id = ${tenantId} and chain_seq is null order by audit_id`.execute(
    db,
  );
  for (const row of unpositioned) {
    walker.add({
      kind: 'null_position',
      audit_id: String(row.audit_id),
      message: `audit_id ${row.audit_id} has no chain position: inserted outside Warden (forged)`,
    });
  }

  let after: { seq: string; id: string } = { seq: '-1', id: '-1' };
  for (;;) {
    const page = await db
      .selectFrom('task_audits')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where(sql<boolean>`(chain_seq, audit_id) > (${after.seq}::bigint, ${after.id}::bigint)`)
      .orderBy('chain_seq')
      .orderBy('audit_id')
      .limit(pageSize)
      .execute();
    if (page.length === 0) break;
    const chained = page.map(toChainedRow);
    walker.push(chained);
    if (checkAnchors) {
      const bySeq = new Map<number, ChainedAuditRow>();
      for (const row of chained) if (!bySeq.has(row.chain_seq)) bySeq.set(row.chain_seq, row);
      const anchors = await anchorsBetween(db, tenantId, after.seq, String(chained.at(-1)!.chain_seq));
      for (const anchor of anchors) {
        anchorCount += 1;
        const problem = checkAuditAnchor(keys, anchor, bySeq.get(anchor.chain_seq));
        if (problem) walker.add(problem);
        else lastAnchored = anchor.chain_seq;
      }
    }
    const last = page.at(-1)!;
    after = { seq: String(last.chain_seq), id: String(last.audit_id) };
    if (page.length < pageSize) break;
  }
  const lastRow = walker.rows > 0 ? walker.last : undefined;

  if (checkAnchors) {
    // Anchors past the last row: the rows they vouched for are gone.
    for (const anchor of await anchorsBetween(db, tenantId, after.seq, undefined)) {
      anchorCount += 1;
      const problem = checkAuditAnchor(keys, anchor, undefined);
      if (problem) walker.add(problem);
    }
  }

  const headRow = await db
    .selectFrom('audit_chain_heads')
    .select(['chain_seq', 'row_hash'])
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst();
  const head = headRow ? { chain_seq: Number(headRow.chain_seq), row_hash: headRow.row_hash } : null;
  const rowsEnd = lastRow?.chain_seq ?? 0;
  if (!head) {
    if (lastRow) {
      walker.add({
        kind: 'head_missing',
        message: `no chain head in audit_chain_heads, but rows exist up to chain position ${rowsEnd}: the head row was deleted`,
      });
    }
  } else if (head.chain_seq < rowsEnd) {
    const firstPast = await db
      .selectFrom('task_audits')
      .select('audit_id')
      .where('tenant_id', '=', tenantId)
      .where('chain_seq', '>', String(head.chain_seq))
      .orderBy('chain_seq')
      .limit(1)
      .executeTakeFirst();
    walker.add({
      kind: 'head_behind',
      chain_seq: head.chain_seq + 1,
      ...(firstPast ? { audit_id: String(firstPast.audit_id) } : {}),
      message: `the chain head is at position ${head.chain_seq} but rows go on to ${rowsEnd}: the head was rewound, or rows ${head.chain_seq + 1}–${rowsEnd} were added outside Warden`,
    });
  } else if (head.chain_seq > rowsEnd) {
    walker.add({
      kind: 'head_ahead',
      chain_seq: rowsEnd + 1,
      message: `the chain head is at position ${head.chain_seq} but the rows end at ${rowsEnd}: rows ${rowsEnd + 1}–${head.chain_seq} were deleted`,
    });
  } else if (lastRow && head.row_hash !== lastRow.row_hash) {
    walker.add({
      kind: 'head_mismatch',
      chain_seq: rowsEnd,
      ...(lastRow.audit_id ? { audit_id: lastRow.audit_id } : {}),
      message: `the chain head's hash differs from the row at position ${rowsEnd}: the last row or the head was rewritten`,
    });
  }

  const first = walker.problems[0];
  return {
    tenant_id: tenantId,
    rows: walker.rows,
    last_seq: rowsEnd,
    head,
    ...(first
      ? { broken: { audit_id: first.audit_id ?? '', chain_seq: first.chain_seq ?? 0, reason: first.message } }
      : {}),
    problems: walker.problems,
    omitted_problems: walker.omitted,
    anchors: {
      checked: checkAnchors,
      count: anchorCount,
      last_anchored_seq: lastAnchored,
      unanchored_rows: checkAnchors ? Math.max(0, rowsEnd - (lastAnchored ?? 0)) : 0,
    },
  };
}

export interface AnchorAuditChainsOptions {
  /** Signs the new anchors (the first key of `WARDEN_AUDIT_KEY`). */
  key: AuditKey;
  /** Keys earlier anchors may be signed with. @defaultValue `[key]` */
  keys?: readonly AuditKey[];
  /** Only this tenant. @defaultValue every tenant whose head moved past its newest anchor */
  tenantId?: string;
  /** Most rows verified per tenant per call; the anchor goes at the last one verified. @defaultValue `100000` */
  maxRows?: number;
  /** Rows read per query. @defaultValue `5000` */
  pageSize?: number;
  /** The anchors' time. @defaultValue now */
  now?: Date;
}

export type AnchorResult =
  | { tenant_id: string; status: 'anchored'; chain_seq: number; from_seq: number }
  /** Not anchored: the rows since the last anchor do not verify (an anchor must never vouch for a tampered chain). */
  | { tenant_id: string; status: 'broken'; from_seq: number; problem: ChainProblem };

/**
 * Anchors every tenant whose chain grew since its newest anchor: verifies the rows after the newest valid
 * anchor (the anchor's own row included, so the starting point is sound), then signs the last verified row's
 * (tenant, position, hash). Several processes may run it at once: an anchor already there is kept.
 */
export async function anchorAuditChains(
  db: QueryExecutor,
  options: AnchorAuditChainsOptions,
): Promise<AnchorResult[]> {
  const { key, keys = [key], maxRows = 100_000, pageSize = 5000, now = new Date() } = options;
  const verifyKeys = keys.some((k) => k.id === key.id) ? keys : [key, ...keys];
  const tenantFilter = options.tenantId === undefined ? sql`` : sql`and h.tenant_id = ${options.tenantId}`;
  const { rows: heads } = await sql<{ tenant_id: string; chain_seq: string; row_hash: string }>`
    select h.tenant_id, h.chain_seq, h.row_hash from audit_chain_heads h
      left join lateral (select a.chain_seq from audit_anchors a where a.tenant_id = h.tenant_id order by a.chain_seq desc limit 1) a on true
     where h.chain_seq > coalesce(a.chain_seq, 0) ${tenantFilter}
     order by h.tenant_id`.execute(db);

  const results: AnchorResult[] = [];
  for (const headRow of heads) {
    const tenantId = headRow.tenant_id;
    const head = { chain_seq: Number(headRow.chain_seq), row_hash: headRow.row_hash };
    const start = await anchoringStart(db, tenantId, verifyKeys);
    if ('problem' in start) {
      results.push({
        tenant_id: tenantId,
        status: 'broken',
        from_seq: start.from_seq,
        problem: start.problem,
      });
      continue;
    }
    const walker = new AuditChainWalker(start, 1);
    const until = Math.min(head.chain_seq, start.chain_seq + maxRows);
    let afterSeq = start.chain_seq;
    while (afterSeq < until && !walker.failed) {
      const page = await db
        .selectFrom('task_audits')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('chain_seq', '>', String(afterSeq))
        .where('chain_seq', '<=', String(until))
        .orderBy('chain_seq')
        .orderBy('audit_id')
        .limit(pageSize)
        .execute();
      if (page.length === 0) break;
      walker.push(page.map(toChainedRow));
      afterSeq = Number(page.at(-1)!.chain_seq);
    }
    if (!walker.failed && walker.last.chain_seq < until) {
      walker.add({
        kind: 'head_ahead',
        chain_seq: walker.last.chain_seq + 1,
        message: `the chain head is at position ${head.chain_seq} but the rows end at ${walker.last.chain_seq}: rows were deleted`,
      });
    }
    if (
      !walker.failed &&
      walker.last.chain_seq === head.chain_seq &&
      walker.last.row_hash !== head.row_hash
    ) {
      walker.add({
        kind: 'head_mismatch',
        chain_seq: head.chain_seq,
        message: `the chain head's hash differs from the row at position ${head.chain_seq}`,
      });
    }
    const problem = walker.problems[0];
    if (problem) {
      results.push({ tenant_id: tenantId, status: 'broken', from_seq: start.chain_seq, problem });
      continue;
    }
    if (walker.rows === 0) continue;
    const anchor = signAuditAnchor(key, {
      tenant_id: tenantId,
      chain_seq: walker.last.chain_seq,
      row_hash: walker.last.row_hash,
      anchored_at: now.toISOString(),
    });
    await db
      .insertInto('audit_anchors')
      .values({ ...anchor, anchored_at: now })
      .onConflict((oc) => oc.columns(['tenant_id', 'chain_seq']).doNothing())
      .execute();
    results.push({
      tenant_id: tenantId,
      status: 'anchored',
      chain_seq: anchor.chain_seq,
      from_seq: start.chain_seq,
    });
  }
  return results;
}

/**
 * Where anchoring resumes: the newest anchor whose signature verifies and whose row still hashes to it, or the
 * genesis when the tenant has none. An invalid newest anchor, or an anchored row that changed, stops anchoring
 * for the tenant until a person has run `warden audit verify`.
 */
async function anchoringStart(
  db: QueryExecutor,
  tenantId: string,
  keys: readonly AuditKey[],
): Promise<ChainPosition | { from_seq: number; problem: ChainProblem }> {
  const newest = await db
    .selectFrom('audit_anchors')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('chain_seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!newest) return { chain_seq: 0, row_hash: GENESIS_HASH };
  const anchor = toAnchor(newest);
  if (checkAuditAnchorSignature(keys, anchor) !== 'valid') {
    const problem = checkAuditAnchor(keys, anchor, undefined)!;
    return { from_seq: anchor.chain_seq, problem };
  }
  const row = await db
    .selectFrom('task_audits')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('chain_seq', '=', String(anchor.chain_seq))
    .execute();
  // The anchored row itself must still hash to its content, else the anchor no longer vouches for anything.
  const walker = new AuditChainWalker(
    { chain_seq: anchor.chain_seq - 1, row_hash: row[0]?.prev_hash ?? GENESIS_HASH },
    1,
  );
  walker.push(row.map(toChainedRow));
  const problem =
    walker.problems[0] ??
    checkAuditAnchor(
      keys,
      anchor,
      row[0]
        ? { chain_seq: anchor.chain_seq, row_hash: row[0].row_hash, audit_id: String(row[0].audit_id) }
        : undefined,
    );
  if (problem) return { from_seq: anchor.chain_seq, problem };
  return { chain_seq: anchor.chain_seq, row_hash: anchor.row_hash };
}

async function anchorsBetween(
  db: QueryExecutor,
  tenantId: string,
  afterSeq: string,
  untilSeq: string | undefined,
): Promise<AuditAnchor[]> {
  let query = db
    .selectFrom('audit_anchors')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('chain_seq', '>', afterSeq);
  if (untilSeq !== undefined) query = query.where('chain_seq', '<=', untilSeq);
  const rows = await query.orderBy('chain_seq').execute();
  return rows.map(toAnchor);
}

function toAnchor(row: {
  tenant_id: string;
  chain_seq: string;
  row_hash: string;
  key_id: string;
  signature: string;
  anchored_at: Date;
}): AuditAnchor {
  return {
    tenant_id: row.tenant_id,
    chain_seq: Number(row.chain_seq),
    row_hash: row.row_hash,
    key_id: row.key_id,
    anchored_at: row.anchored_at.toISOString(),
    signature: row.signature,
  };
}

function toChainedRow(row: AuditRow): ChainedAuditRow {
  return {
    ...toAuditChainContent(row),
    // Null only once the NOT NULL constraints are gone; an empty hash then fails as an edit.
    prev_hash: row.prev_hash ?? '',
    row_hash: row.row_hash ?? '',
  };
}
