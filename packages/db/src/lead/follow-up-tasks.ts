/**
 * The lead miner's follow-up tasks in `tasks`: inserted once by their derived id, and read back when that id is
 * taken, so the engine can tell its own follow-up from someone else's task.
 */
import type { LeadFollowUpTask } from '@warden/domain';
import type { QueryExecutor } from '../database.js';

/** Inserts the task unless a task with its id exists; returns whether it was inserted. */
export async function insertLeadFollowUpTask(
  trx: QueryExecutor,
  tenantId: string,
  task: Pick<LeadFollowUpTask, 'task_id' | 'status' | 'metadata'>,
): Promise<boolean> {
  const inserted = await trx
    .insertInto('tasks')
    .values({
      tenant_id: tenantId,
      task_id: task.task_id,
      status: task.status,
      metadata: JSON.stringify(task.metadata),
    })
    .onConflict((oc) => oc.columns(['tenant_id', 'task_id']).doNothing())
    .returning('task_id')
    .executeTakeFirst();
  return inserted !== undefined;
}

/** The metadata of a task, or undefined when there is no such task. */
export async function readTaskMetadata(
  db: QueryExecutor,
  tenantId: string,
  taskId: string,
): Promise<Record<string, unknown> | undefined> {
  const row = await db
    .selectFrom('tasks')
    .select('metadata')
    .where('tenant_id', '=', tenantId)
    .where('task_id', '=', taskId)
    .executeTakeFirst();
  return row?.metadata;
}
