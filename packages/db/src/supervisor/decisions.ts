import { sql } from 'kysely';
import {
  taskStateKey,
  type Decision,
  type RunningTaskResources,
  type TaskContext,
  type TaskStatus,
} from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import { compareTaskKeys, updateTasksStatement, type TaskKey, type TaskUpdate } from '../core/tasks.js';
import { archiveStatement, type ArchivedEventRecord } from './event-archive.js';

/**
 * Creates the tasks not seen before (status `running`) and locks every given task row until the transaction
 * ends, in a fixed order so concurrent transactions cannot deadlock. Returns each task's context by key.
 */
export async function lockTaskContexts(
  trx: QueryExecutor,
  keys: readonly TaskKey[],
): Promise<Map<string, TaskContext & { created: boolean }>> {
  const unique = [...new Map(keys.map((k) => [taskStateKey(k), k])).values()].sort(compareTaskKeys);
  if (unique.length === 0) return new Map();
  // One statement: a new task is inserted, an existing one is locked by the no-op update, in the sorted order
  // (so concurrent transactions cannot deadlock). Unlike a SELECT … FOR UPDATE after the insert, it also
  // waits for and locks a task another transaction is creating right now. `xmax = 0` marks inserted rows.
  const rows = await sql<{
    tenant_id: string;
    task_id: string;
    status: string;
    metadata: Record<string, unknown>;
    retry_count: number;
    created: boolean;
  }>`
    insert into tasks as t (tenant_id, task_id, status, metadata)
    select tenant_id, task_id, 'running', '{}'::jsonb
      from unnest(${unique.map((k) => k.tenant_id)}::text[], ${unique.map((k) => k.task_id)}::text[]) with ordinality as k(tenant_id, task_id, n)
     order by n
    on conflict (tenant_id, task_id) do update set status = t.status
    returning t.tenant_id, t.task_id, t.status, t.metadata, t.retry_count, (t.xmax = 0) as created`.execute(
    trx,
  );
  const contexts = new Map<string, TaskContext & { created: boolean }>();
  for (const row of rows.rows) {
    const isNew = row.created;
    contexts.set(taskStateKey(row), {
      status: isNew ? undefined : (row.status as TaskStatus),
      metadata: row.metadata,
      retry_count: row.retry_count,
      created: isNew,
    });
  }
  return contexts;
}

/**
 * Tasks of these tenants that hold exclusive resources (running, verifying, retrying or paused: see
 * `RESOURCE_HOLDING_STATUSES` in the domain's task lifecycle), for conflict checks.
 * Takes a transaction-scoped advisory lock per tenant first (tenants in sorted order), so two transactions
 * admitting tasks of one tenant check conflicts one after the other: the second sees the first's new holder.
 */
export async function findTasksHoldingResources(
  trx: QueryExecutor,
  tenantIds: readonly string[],
): Promise<Map<string, RunningTaskResources[]>> {
  const result = new Map<string, RunningTaskResources[]>();
  if (tenantIds.length === 0) return result;
  for (const tenant of [...new Set(tenantIds)].sort()) {
    await sql`select pg_advisory_xact_lock(hashtextextended(${'warden:exclusive-resources:' + tenant}, 0))`.execute(
      trx,
    );
  }
  const rows = await sql<{ tenant_id: string; task_id: string; resources: unknown }>`
    select tenant_id, task_id, metadata -> 'exclusive_resources' as resources from tasks
     where tenant_id = any(${[...tenantIds]}::text[])
       and status in ('running', 'verifying', 'retrying', 'paused') and metadata ? 'exclusive_resources'`.execute(
    trx,
  );
  for (const row of rows.rows) {
    const resources = Array.isArray(row.resources)
      ? row.resources.filter((r): r is string => typeof r === 'string')
      : [];
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
export async function insertDecisions(
  trx: QueryExecutor,
  decisions: readonly NewDecision[],
): Promise<Set<string>> {
  if (decisions.length === 0) return new Set();
  const { rows } = await insertDecisionsStatement(decisions).execute(trx);
  return new Set(rows.map((r) => r.decision_id));
}

/** The INSERT of `insertDecisions` (returning the inserted ids), to run on its own or inside a larger statement. */
function insertDecisionsStatement(decisions: readonly NewDecision[]) {
  const rows = decisions.map(({ tenant_id, task_id, event_id, decision }) => ({
    decision_id: decision.decision_id,
    tenant_id,
    task_id,
    event_id,
    decision_type: decision.decision_type,
    reason: decision.reason,
    findings: decision.findings,
    actions: decision.actions,
    policy: decision.policy,
    policy_version: decision.policy_version,
    would_have: decision.would_have ?? null,
  }));
  return sql<{ decision_id: string }>`
    insert into decisions (decision_id, tenant_id, task_id, event_id, decision_type, reason, findings, actions, policy,
                           policy_version, would_have)
    select decision_id, tenant_id, task_id, event_id, decision_type, reason, findings, actions, policy, policy_version, would_have
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
           as r(decision_id text, tenant_id text, task_id text, event_id text, decision_type text, reason text,
                findings jsonb, actions jsonb, policy text, policy_version text, would_have text)
    on conflict do nothing
    returning decision_id`;
}

/**
 * A decided group's rows in one statement: the decisions (one that exists for the same event is skipped), each
 * task's final state, and the archive records. Part of the caller's decision transaction.
 */
export async function recordDecidedGroup(
  trx: QueryExecutor,
  group: {
    decisions: readonly NewDecision[];
    tasks: readonly TaskUpdate[];
    archive: readonly ArchivedEventRecord[];
  },
): Promise<void> {
  const parts = [
    group.decisions.length > 0 ? insertDecisionsStatement(group.decisions) : undefined,
    group.tasks.length > 0 ? updateTasksStatement(group.tasks) : undefined,
    group.archive.length > 0 ? archiveStatement(group.archive) : undefined,
  ].filter((part) => part !== undefined);
  if (parts.length === 0) return;
  // Postgres runs every data-modifying CTE to completion, read or not.
  await sql`with ${sql.join(
    parts.map((part, index) => sql`${sql.raw(`w${index}`)} as (${part})`),
  )} select 1`.execute(trx);
}
