import { sql } from 'kysely';
import {
  encodeCursor,
  taskStateKey,
  type AuditView,
  type Gate,
  type Page,
  type TaskStatus,
  type TaskView,
} from '@warden/domain';
import type { GateRow, QueryExecutor } from '../database.js';

/** A task's identity: task ids are unique within a tenant. */
export interface TaskKey {
  tenant_id: string;
  task_id: string;
}

/** Orders task keys the way rows are locked everywhere (tenant, then task), so transactions cannot deadlock. */
export function compareTaskKeys(a: TaskKey, b: TaskKey): number {
  const [x, y] = [taskStateKey(a), taskStateKey(b)];
  return x < y ? -1 : x > y ? 1 : 0;
}

export function toGate(row: GateRow): Gate {
  return {
    gate_id: row.gate_id,
    task_id: row.task_id,
    checkpoint: row.checkpoint,
    reason: row.reason,
    state: row.state,
    decision_id: row.decision_id,
    opened_at: row.opened_at.toISOString(),
    released_at: row.released_at?.toISOString() ?? null,
    released_by: row.released_by,
    expires_at: row.expires_at.toISOString(),
  };
}

/** The task with its open gates, scoped to the tenant; undefined for an unknown or foreign task. */
export async function findTaskView(
  db: QueryExecutor,
  tenantId: string,
  taskId: string,
): Promise<TaskView | undefined> {
  const task = await db
    .selectFrom('tasks')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('task_id', '=', taskId)
    .executeTakeFirst();
  if (!task) return undefined;
  const gates = await db
    .selectFrom('task_gates')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('task_id', '=', taskId)
    .where('state', '=', 'open')
    .orderBy('opened_at')
    .execute();
  return {
    task_id: task.task_id,
    status: task.status as TaskStatus,
    metadata: task.metadata,
    retry_count: task.retry_count,
    created_at: task.created_at.toISOString(),
    updated_at: task.updated_at.toISOString(),
    open_gates: gates.map(toGate),
  };
}

/** True when the tenant has a task with this id. */
export async function taskExists(db: QueryExecutor, tenantId: string, taskId: string): Promise<boolean> {
  const row = await db
    .selectFrom('tasks')
    .select('task_id')
    .where('tenant_id', '=', tenantId)
    .where('task_id', '=', taskId)
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * A task's audit rows, oldest first, keyset-paginated on `audit_id` so pages stay stable while rows are
 * appended. `afterAuditId` is the last id of the previous page.
 */
export async function listTaskAudits(
  db: QueryExecutor,
  tenantId: string,
  taskId: string,
  options: { limit: number; afterAuditId?: string },
): Promise<Page<AuditView>> {
  let query = db
    .selectFrom('task_audits')
    .select(['audit_id', 'event_type', 'level', 'decision_id', 'payload', 'created_at'])
    .where('tenant_id', '=', tenantId)
    .where('task_id', '=', taskId)
    .orderBy('audit_id')
    .limit(options.limit + 1);
  if (options.afterAuditId !== undefined) query = query.where('audit_id', '>', options.afterAuditId);
  const rows = await query.execute();
  const page = rows.slice(0, options.limit);
  const last = page.at(-1);
  return {
    items: page.map((row) => ({
      audit_id: row.audit_id,
      event_type: row.event_type,
      level: row.level as AuditView['level'],
      decision_id: row.decision_id,
      payload: row.payload,
      created_at: row.created_at.toISOString(),
    })),
    next_cursor: rows.length > options.limit && last ? encodeCursor({ after: last.audit_id }) : null,
  };
}

export interface DecisionView {
  decision_id: string;
  event_id: string;
  decision_type: string;
  reason: string;
  findings: unknown[];
  actions: unknown[];
  policy: string;
  policy_version: string;
  would_have: string | null;
  created_at: string;
}

/** A task's decisions, newest first, optionally only the one for `eventId`. */
export async function listTaskDecisions(
  db: QueryExecutor,
  tenantId: string,
  taskId: string,
  options: { eventId?: string; limit: number },
): Promise<DecisionView[]> {
  let query = db
    .selectFrom('decisions')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('task_id', '=', taskId)
    .orderBy('created_at', 'desc')
    .limit(options.limit);
  if (options.eventId !== undefined) query = query.where('event_id', '=', options.eventId);
  const rows = await query.execute();
  return rows.map((row) => ({
    decision_id: row.decision_id,
    event_id: row.event_id,
    decision_type: row.decision_type,
    reason: row.reason,
    findings: row.findings,
    actions: row.actions,
    policy: row.policy,
    policy_version: row.policy_version,
    would_have: row.would_have,
    created_at: row.created_at.toISOString(),
  }));
}

export interface TaskUpdate extends TaskKey {
  status: TaskStatus;
  retry_count: number;
  metadata: Record<string, unknown>;
}

/** Writes the final state of each task (one row per task) in one statement. */
export async function updateTasks(trx: QueryExecutor, updates: readonly TaskUpdate[]): Promise<void> {
  if (updates.length === 0) return;
  await updateTasksStatement(updates).execute(trx);
}

/** The UPDATE of `updateTasks`, to run on its own or inside a larger statement. */
export function updateTasksStatement(updates: readonly TaskUpdate[]) {
  const sorted = [...updates].sort(compareTaskKeys);
  // One JSON document, not an array per column: node-postgres escapes array elements (the metadata) slowly.
  return sql`
    update tasks as t
       set status = u.status, retry_count = u.retry_count, metadata = u.metadata, updated_at = now()
      from jsonb_to_recordset(${JSON.stringify(sorted.map((u) => ({ tenant_id: u.tenant_id, task_id: u.task_id, status: u.status, retry_count: u.retry_count, metadata: u.metadata })))}::jsonb)
           as u(tenant_id text, task_id text, status text, retry_count int, metadata jsonb)
     where t.tenant_id = u.tenant_id and t.task_id = u.task_id`;
}
