import { sql, type Kysely, type Transaction } from 'kysely';
import {
  AUDIT_HASH_VERSION,
  auditRowHash,
  GENESIS_HASH,
  toAuditChainContent,
  type AuditLevel,
  type Decision,
  type RunningTaskResources,
  type TaskContext,
  type TaskStatus,
} from '@warden/domain';
import type { Database } from '../database.js';

type Executor = Kysely<Database> | Transaction<Database>;

export interface TaskKey {
  tenant_id: string;
  task_id: string;
}

const taskKey = (k: TaskKey) => `${k.tenant_id}\u0000${k.task_id}`;
const byTask = (a: TaskKey, b: TaskKey) => (taskKey(a) < taskKey(b) ? -1 : taskKey(a) > taskKey(b) ? 1 : 0);

/**
 * Creates the tasks not seen before (status `running`) and locks every given task row until the transaction
 * ends, in a fixed order so concurrent transactions cannot deadlock. Returns each task's context by key.
 */
export async function lockTaskContexts(trx: Transaction<Database>, keys: readonly TaskKey[]): Promise<Map<string, TaskContext & { created: boolean }>> {
  const unique = [...new Map(keys.map((k) => [taskKey(k), k])).values()].sort(byTask);
  if (unique.length === 0) return new Map();
  const created = await trx
    .insertInto('tasks')
    .values(unique.map((k) => ({ tenant_id: k.tenant_id, task_id: k.task_id, status: 'running', metadata: '{}' })))
    .onConflict((oc) => oc.columns(['tenant_id', 'task_id']).doNothing())
    .returning(['tenant_id', 'task_id'])
    .execute();
  const createdKeys = new Set(created.map(taskKey));
  const rows = await sql<{ tenant_id: string; task_id: string; status: string; metadata: Record<string, unknown>; retry_count: number }>`
    select tenant_id, task_id, status, metadata, retry_count from tasks
     where (tenant_id, task_id) in (select * from unnest(${unique.map((k) => k.tenant_id)}::text[], ${unique.map((k) => k.task_id)}::text[]))
     order by tenant_id, task_id
       for update`.execute(trx);
  const contexts = new Map<string, TaskContext & { created: boolean }>();
  for (const row of rows.rows) {
    const isNew = createdKeys.has(taskKey(row));
    contexts.set(taskKey(row), { status: isNew ? undefined : (row.status as TaskStatus), metadata: row.metadata, retry_count: row.retry_count, created: isNew });
  }
  return contexts;
}

/**
 * Tasks of these tenants that hold exclusive resources (running, verifying, retrying or paused: see
 * `RESOURCE_HOLDING_STATUSES` in the domain's task lifecycle), for conflict checks.
 * Takes a transaction-scoped advisory lock per tenant first (tenants in sorted order), so two transactions
 * admitting tasks of one tenant check conflicts one after the other: the second sees the first's new holder.
 */
export async function findTasksHoldingResources(trx: Transaction<Database>, tenantIds: readonly string[]): Promise<Map<string, RunningTaskResources[]>> {
  const result = new Map<string, RunningTaskResources[]>();
  if (tenantIds.length === 0) return result;
  for (const tenant of [...new Set(tenantIds)].sort()) {
    await sql`select pg_advisory_xact_lock(hashtextextended(${'warden:exclusive-resources:' + tenant}, 0))`.execute(trx);
  }
  const rows = await sql<{ tenant_id: string; task_id: string; resources: unknown }>`
    select tenant_id, task_id, metadata -> 'exclusive_resources' as resources from tasks
     where tenant_id = any(${[...tenantIds]}::text[])
       and status in ('running', 'verifying', 'retrying', 'paused') and metadata ? 'exclusive_resources'`.execute(trx);
  for (const row of rows.rows) {
    const resources = Array.isArray(row.resources) ? row.resources.filter((r): r is string => typeof r === 'string') : [];
    if (resources.length === 0) continue;
    const list = result.get(row.tenant_id) ?? [];
    list.push({ task_id: row.task_id, resources });
    result.set(row.tenant_id, list);
  }
  return result;
}

export interface NewDecision extends TaskKey {
  event_id: string;
  decision: Decision;
}

/** Inserts decisions; one that exists for the same event is skipped. Returns the ids actually inserted. */
export async function insertDecisions(trx: Executor, decisions: readonly NewDecision[]): Promise<Set<string>> {
  if (decisions.length === 0) return new Set();
  const rows = await trx
    .insertInto('decisions')
    .values(
      decisions.map(({ tenant_id, task_id, event_id, decision }) => ({
        decision_id: decision.decision_id,
        tenant_id,
        task_id,
        event_id,
        decision_type: decision.decision_type,
        reason: decision.reason,
        findings: JSON.stringify(decision.findings),
        actions: JSON.stringify(decision.actions),
        policy: decision.policy,
        policy_version: decision.policy_version,
        would_have: decision.would_have ?? null,
      })),
    )
    .onConflict((oc) => oc.doNothing())
    .returning('decision_id')
    .execute();
  return new Set(rows.map((r) => r.decision_id));
}

export interface TaskUpdate extends TaskKey {
  status: TaskStatus;
  retry_count: number;
  metadata: Record<string, unknown>;
}

/** Writes the final state of each task (one row per task) in one statement. */
export async function updateTasks(trx: Executor, updates: readonly TaskUpdate[]): Promise<void> {
  if (updates.length === 0) return;
  const sorted = [...updates].sort(byTask);
  // One JSON document, not an array per column: node-postgres escapes array elements (the metadata) slowly.
  await sql`
    update tasks as t
       set status = u.status, retry_count = u.retry_count, metadata = u.metadata, updated_at = now()
      from jsonb_to_recordset(${JSON.stringify(sorted.map((u) => ({ tenant_id: u.tenant_id, task_id: u.task_id, status: u.status, retry_count: u.retry_count, metadata: u.metadata })))}::jsonb)
           as u(tenant_id text, task_id text, status text, retry_count int, metadata jsonb)
     where t.tenant_id = u.tenant_id and t.task_id = u.task_id`.execute(trx);
}

export interface NewGate extends TaskKey {
  gate_id: string;
  checkpoint: string;
  reason: string;
  decision_id: string | null;
}

export async function openGates(trx: Executor, gates: readonly NewGate[]): Promise<void> {
  if (gates.length === 0) return;
  await trx
    .insertInto('task_gates')
    .values(gates.map((g) => ({ tenant_id: g.tenant_id, task_id: g.task_id, gate_id: g.gate_id, checkpoint: g.checkpoint, reason: g.reason, decision_id: g.decision_id })))
    .onConflict((oc) => oc.columns(['tenant_id', 'gate_id']).doNothing())
    .execute();
}

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
 */
export async function appendAudits(trx: Transaction<Database>, audits: readonly NewAudit[], processedAt = new Date()): Promise<void> {
  if (audits.length === 0) return;
  const counts = new Map<string, number>();
  for (const audit of audits) counts.set(audit.tenant_id, (counts.get(audit.tenant_id) ?? 0) + 1);
  const tenants = [...counts.keys()].sort();
  const heads = await lockChainHeads(trx, tenants, tenants.map((t) => counts.get(t)!));
  const state = new Map(heads.map((h) => [h.tenant_id, { seq: Number(h.chain_seq), hash: h.row_hash, ids: sortIds(h.audit_ids), createdAt: h.created_at }]));
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
    const row = { ...content, payload: audit.payload, source_event_ts: audit.source_event_ts, processed_at: processedAt, created_at: head.createdAt, prev_hash: head.hash, row_hash: rowHash };
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
}

/**
 * Creates the missing heads and locks all of them, in the order given (sorted: no deadlocks). For each head,
 * after its lock is held, allocates `count` audit ids and reads the clock (to the millisecond, what a JS Date
 * holds, so the hashed `created_at` is exactly the stored one).
 */
async function lockChainHeads(trx: Transaction<Database>, tenants: readonly string[], counts: readonly number[]) {
  const result = await sql<{ tenant_id: string; chain_seq: string; row_hash: string; audit_ids: string[]; created_at: Date }>`
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
