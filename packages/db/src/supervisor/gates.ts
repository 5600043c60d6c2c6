import { transitionTask, type Gate, type TaskStatus } from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import { appendAudits } from '../core/audits.js';
import { toGate, type TaskKey } from '../core/tasks.js';

export type ReleaseGateResult =
  { status: 'released'; gate: Gate } | { status: 'not_found' } | { status: 'already_released'; gate: Gate };

/**
 * Releases an open gate in one transaction: the gate is marked released (by whom), a `GATE_RELEASED` audit
 * row joins the tenant's chain, and a paused task goes back to `running` once no other gate holds it (the task
 * lifecycle's `gate_released` transition; a blocked task stays blocked).
 */
export async function releaseGate(
  trx: QueryExecutor,
  input: { tenantId: string; taskId: string; gateId: string; releasedBy: string; note?: string },
): Promise<ReleaseGateResult> {
  // The task row first, as the decision processor locks it: no decision can open another gate between the
  // check for open gates and the status change below.
  const task = await trx
    .selectFrom('tasks')
    .select('status')
    .where('tenant_id', '=', input.tenantId)
    .where('task_id', '=', input.taskId)
    .forUpdate()
    .executeTakeFirst();
  if (!task) return { status: 'not_found' };
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
  const stillOpen = await countOpenGates(trx, input.tenantId, input.taskId);
  const transition = transitionTask(task.status as TaskStatus, 'running', 'gate_released');
  if (stillOpen === 0 && transition.allowed && task.status === 'paused') {
    await trx
      .updateTable('tasks')
      .set({ status: transition.status, updated_at: new Date() })
      .where('tenant_id', '=', input.tenantId)
      .where('task_id', '=', input.taskId)
      .execute();
  }
  await appendAudits(trx, [
    {
      tenant_id: input.tenantId,
      task_id: input.taskId,
      event_type: 'GATE_RELEASED',
      level: 'info',
      decision_id: null,
      event_id: null,
      source_event_ts: null,
      payload: {
        gate_id: input.gateId,
        checkpoint: gate.checkpoint,
        released_by: input.releasedBy,
        ...(input.note ? { note: input.note } : {}),
      },
    },
  ]);
  return { status: 'released', gate: toGate(released) };
}

async function countOpenGates(trx: QueryExecutor, tenantId: string, taskId: string): Promise<number> {
  const row = await trx
    .selectFrom('task_gates')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('tenant_id', '=', tenantId)
    .where('task_id', '=', taskId)
    .where('state', '=', 'open')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export type UnblockTaskResult =
  { status: 'unblocked' } | { status: 'not_found' } | { status: 'not_blocked'; current: TaskStatus };

/**
 * A person unblocks a blocked task, in one transaction: the task goes back to `running` — or to `paused` while
 * a gate opened before the block is still open (the task lifecycle's `unblocked` transition, the only way out
 * of `blocked`) — and a `TASK_UNBLOCKED` audit row records who did it and why. A task that is not blocked is
 * left as it is.
 */
export async function unblockTask(
  trx: QueryExecutor,
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
  // Gates opened before the block stay open: the task waits at them again, for a person to release.
  const target: TaskStatus =
    (await countOpenGates(trx, input.tenantId, input.taskId)) > 0 ? 'paused' : 'running';
  const transition = transitionTask(current, target, 'unblocked');
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
      payload: {
        unblocked_by: input.unblockedBy,
        reason: input.reason,
        from: current,
        to: transition.status,
      },
    },
  ]);
  return { status: 'unblocked' };
}

export interface NewGate extends TaskKey {
  gate_id: string;
  checkpoint: string;
  reason: string;
  decision_id: string | null;
}

export async function openGates(trx: QueryExecutor, gates: readonly NewGate[]): Promise<void> {
  if (gates.length === 0) return;
  await trx
    .insertInto('task_gates')
    .values(
      gates.map((g) => ({
        tenant_id: g.tenant_id,
        task_id: g.task_id,
        gate_id: g.gate_id,
        checkpoint: g.checkpoint,
        reason: g.reason,
        decision_id: g.decision_id,
      })),
    )
    .onConflict((oc) => oc.columns(['tenant_id', 'gate_id']).doNothing())
    .execute();
}
