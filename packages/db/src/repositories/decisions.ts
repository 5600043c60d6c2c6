import { sql, type Kysely, type Transaction } from 'kysely';
import {
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

export function taskContextKey(key: TaskKey): string {
  return taskKey(key);
}

/**
 * Running (or paused, or verifying) tasks of these tenants that hold exclusive resources, for conflict checks.
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
       and status in ('running', 'verifying', 'paused') and metadata ? 'exclusive_resources'`.execute(trx);
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
  await sql`
    update tasks as t
       set status = u.status, retry_count = u.retry_count, metadata = u.metadata::jsonb, updated_at = now()
      from unnest(${sorted.map((u) => u.tenant_id)}::text[], ${sorted.map((u) => u.task_id)}::text[], ${sorted.map((u) => u.status)}::text[],
                  ${sorted.map((u) => u.retry_count)}::int[], ${sorted.map((u) => JSON.stringify(u.metadata))}::text[])
           as u(tenant_id, task_id, status, retry_count, metadata)
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
 */
export async function appendAudits(trx: Transaction<Database>, audits: readonly NewAudit[], processedAt = new Date()): Promise<void> {
  if (audits.length === 0) return;
  const tenants = [...new Set(audits.map((a) => a.tenant_id))].sort();
  await trx
    .insertInto('audit_chain_heads')
    .values(tenants.map((tenant_id) => ({ tenant_id, chain_seq: 0, row_hash: GENESIS_HASH })))
    .onConflict((oc) => oc.column('tenant_id').doNothing())
    .execute();
  const heads = await trx
    .selectFrom('audit_chain_heads')
    .select(['tenant_id', 'chain_seq', 'row_hash'])
    .where('tenant_id', 'in', tenants)
    .orderBy('tenant_id')
    .forUpdate()
    .execute();
  const state = new Map(heads.map((h) => [h.tenant_id, { seq: Number(h.chain_seq), hash: h.row_hash }]));
  const rows = audits.map((audit) => {
    const head = state.get(audit.tenant_id)!;
    const content = toAuditChainContent({ ...audit, chain_seq: head.seq + 1, processed_at: processedAt });
    const rowHash = auditRowHash(content, head.hash);
    const row = {
      tenant_id: audit.tenant_id,
      task_id: audit.task_id,
      event_type: audit.event_type,
      level: audit.level,
      decision_id: audit.decision_id,
      event_id: audit.event_id,
      source_event_ts: audit.source_event_ts,
      processed_at: processedAt,
      payload: JSON.stringify(audit.payload),
      chain_seq: content.chain_seq,
      prev_hash: head.hash,
      row_hash: rowHash,
    };
    state.set(audit.tenant_id, { seq: content.chain_seq, hash: rowHash });
    return row;
  });
  await trx.insertInto('task_audits').values(rows).execute();
  const finalHeads = [...state.entries()];
  await sql`
    update audit_chain_heads as h set chain_seq = v.seq, row_hash = v.hash, updated_at = now()
      from unnest(${finalHeads.map(([t]) => t)}::text[], ${finalHeads.map(([, s]) => s.seq)}::bigint[], ${finalHeads.map(([, s]) => s.hash)}::text[]) as v(tenant_id, seq, hash)
     where h.tenant_id = v.tenant_id`.execute(trx);
}
