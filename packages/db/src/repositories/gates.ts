import { sql, type Transaction } from 'kysely';
import { transitionTask, type Gate, type TaskStatus } from '@warden/domain';
import type { Database } from '../database.js';
import { appendAudits } from './decisions.js';
import { toGate } from './tasks.js';

export type ReleaseGateResult = { status: 'released'; gate: Gate } | { status: 'not_found' } | { status: 'already_released'; gate: Gate };

/**
 * Releases an open gate in one transaction: the gate is marked released (by whom), a `GATE_RELEASED` audit
 * row joins the tenant's chain, and the task goes back to `running` once no other gate holds it.
 */
export async function releaseGate(
  trx: Transaction<Database>,
  input: { tenantId: string; taskId: string; gateId: string; releasedBy: string; note?: string },
): Promise<ReleaseGateResult> {
  const gate = await trx
    .selectFrom('task_gates')
    .selectAll()
    .where('tenant_id', '=', input.tenantId)
    .where('task_id', '=', input.taskId)
    .where('gate_id', '=', input.gateId)
    .forUpdate()
    .executeTakeFirst();
  if (!gate) return { status: 'not_found' };
  if (gate.state === 'released') return { status: 'already_released', gate: toGate(gate) };

  const released = await trx
    .updateTable('task_gates')
    .set({ state: 'released', released_at: new Date(), released_by: input.releasedBy })
    .where('tenant_id', '=', input.tenantId)
    .where('gate_id', '=', input.gateId)
    .returningAll()
    .executeTakeFirstOrThrow();
  await sql`
    update tasks set status = 'running', updated_at = now()
     where tenant_id = ${input.tenantId} and task_id = ${input.taskId} and status = 'paused'
       and not exists (select 1 from task_gates g where g.tenant_id = ${input.tenantId} and g.task_id = ${input.taskId} and g.state = 'open')`.execute(trx);
  await appendAudits(trx, [
    {
      tenant_id: input.tenantId,
      task_id: input.taskId,
      event_type: 'GATE_RELEASED',
      level: 'info',
      decision_id: null,
      event_id: null,
      source_event_ts: null,
      payload: { gate_id: input.gateId, checkpoint: gate.checkpoint, released_by: input.releasedBy, ...(input.note ? { note: input.note } : {}) },
    },
  ]);
  return { status: 'released', gate: toGate(released) };
}

export type UnblockTaskResult = { status: 'unblocked' } | { status: 'not_found' } | { status: 'not_blocked'; current: TaskStatus };

/**
 * A person unblocks a blocked task, in one transaction: the task goes back to `running` (the task lifecycle's
 * `unblocked` transition, the only way out of `blocked`) and a `TASK_UNBLOCKED` audit row records who did it
 * and why. A task that is not blocked is left as it is.
 */
export async function unblockTask(
  trx: Transaction<Database>,
  input: { tenantId: string; taskId: string; unblockedBy: string; reason: string },
): Promise<UnblockTaskResult> {
  const task = await trx
    .selectFrom('tasks')
    .select(['status'])
    .where('tenant_id', '=', input.tenantId)
    .where('task_id', '=', input.taskId)
    .forUpdate()
    .executeTakeFirst();
  if (!task) return { status: 'not_found' };
  const current = task.status as TaskStatus;
  const transition = transitionTask(current, 'running', 'unblocked');
  if (current !== 'blocked' || !transition.allowed) return { status: 'not_blocked', current };
  await trx
    .updateTable('tasks')
    .set({ status: transition.status, updated_at: new Date() })
    .where('tenant_id', '=', input.tenantId)
    .where('task_id', '=', input.taskId)
    .execute();
  await appendAudits(trx, [
    {
      tenant_id: input.tenantId,
      task_id: input.taskId,
      event_type: 'TASK_UNBLOCKED',
      level: 'warn',
      decision_id: null,
      event_id: null,
      source_event_ts: null,
      payload: { unblocked_by: input.unblockedBy, reason: input.reason, from: current, to: transition.status },
    },
  ]);
  return { status: 'unblocked' };
}
