import { sql } from 'kysely';
import {
  taskStateKey,
  type Decision,
  type RunningTaskResources,
  type TaskContext,
  type TaskStatus,
} from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import { compareTaskKeys, type TaskKey } from '../core/tasks.js';

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
  const created = await trx
    .insertInto('tasks')
    .values(
      unique.map((k) => ({ tenant_id: k.tenant_id, task_id: k.task_id, status: 'running', metadata: '{}' })),
    )
    .onConflict((oc) => oc.columns(['tenant_id', 'task_id']).doNothing())
    .returning(['tenant_id', 'task_id'])
    .execute();
  const createdKeys = new Set(created.map(taskStateKey));
  const rows = await sql<{
    tenant_id: string;
    task_id: string;
    status: string;
    metadata: Record<string, unknown>;
    retry_count: number;
  }>`
    select tenant_id, task_id, status, metadata, retry_count from tasks
     where (tenant_id, task_id) in (select * from unnest(${unique.map((k) => k.tenant_id)}::text[], ${unique.map((k) => k.task_id)}::text[]))
     order by tenant_id, task_id
       for update`.execute(trx);
  const contexts = new Map<string, TaskContext & { created: boolean }>();
  for (const row of rows.rows) {
    const isNew = createdKeys.has(taskStateKey(row));
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
