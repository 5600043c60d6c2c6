import { transitionTask, type Gate, type TaskStatus } from '@warden/domain';
import type { GateRow, QueryExecutor } from '../database.js';
import { appendAudits } from '../core/audits.js';
import { toGate, type TaskKey } from '../core/tasks.js';

export type ReleaseGateResult =
  | { status: 'released'; gate: Gate }
  | { status: 'not_found' }
  | { status: 'already_released'; gate: Gate }
  | { status: 'ambiguous'; gateIds: string[] };

/**
 * Releases an open gate in one transaction: the gate is marked released (by whom), a `GATE_RELEASED` audit
 * row joins the tenant's chain, and a paused task goes back to `running` once no other gate holds it (the task
 * lifecycle's `gate_released` transition; a blocked task stays blocked).
 *
 * `gate` names the gate by its id or, when no gate of the task has that id, by the checkpoint of the task's
 * open gate — what a person reads in the task view. Two open gates at that checkpoint answer `ambiguous` with
 * their ids; none open but some released answers `already_released` with the latest, so a retry stays a 409.
 */
export async function releaseGate(
  trx: QueryExecutor,
  input: {
    tenantId: string;
    taskId: string;
    gate: string;
    releasedBy: string;
    /** The person or system the releasing key belongs to, recorded next to `releasedBy` in the audit row. */
    releasedByOwner?: string;
    note?: string;
  },
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
  const found = await findGateByIdOrCheckpoint(trx, input.tenantId, input.taskId, input.gate);
  if (found.status !== 'found') return found;
  const gate = found.gate;
  if (gate.state === 'released') return { status: 'already_released', gate: toGate(gate) };

  const released = await trx
    .updateTable('task_gates')
    .set({ state: 'released', released_at: new Date(), released_by: input.releasedBy })
    .where('tenant_id', '=', input.tenantId)
    .where('gate_id', '=', gate.gate_id)
    .returningAll()
    .executeTakeFirstOrThrow();
  const stillOpen = await countOpenGates(trx, input.tenantId, input.taskId);
  const transition = transitionTask(task.status as TaskStatus, 'running', 'gate_released');
  if (stillOpen === 0 && transition.allowed && task.status === 'paused') {
    await setTaskStatus(trx, input.tenantId, input.taskId, transition.status);
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
        gate_id: gate.gate_id,
        checkpoint: gate.checkpoint,
        released_by: input.releasedBy,
        ...(input.releasedByOwner ? { released_by_owner: input.releasedByOwner } : {}),
        ...(input.note ? { note: input.note } : {}),
      },
    },
  ]);
  return { status: 'released', gate: toGate(released) };
}

/** The task's gate with id `ref`, else its open gate at checkpoint `ref`; locked for the release. */
async function findGateByIdOrCheckpoint(
  trx: QueryExecutor,
  tenantId: string,
  taskId: string,
  ref: string,
): Promise<
  | { status: 'found'; gate: GateRow }
  | { status: 'not_found' }
  | { status: 'already_released'; gate: Gate }
  | { status: 'ambiguous'; gateIds: string[] }
> {
  const gates = () =>
    trx.selectFrom('task_gates').selectAll().where('tenant_id', '=', tenantId).where('task_id', '=', taskId);
  const byId = await gates().where('gate_id', '=', ref).forUpdate().executeTakeFirst();
  if (byId) return { status: 'found', gate: byId };
  const atCheckpoint = await gates()
    .where('checkpoint', '=', ref)
    .orderBy('opened_at', 'desc')
    .orderBy('gate_id')
    .forUpdate()
    .execute();
  const open = atCheckpoint.filter((gate) => gate.state === 'open');
  if (open.length === 1) return { status: 'found', gate: open[0]! };
  if (open.length > 1) return { status: 'ambiguous', gateIds: open.map((gate) => gate.gate_id) };
  const latest = atCheckpoint[0];
  return latest ? { status: 'already_released', gate: toGate(latest) } : { status: 'not_found' };
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
  input: {
    tenantId: string;
    taskId: string;
    unblockedBy: string;
    /** The person or system the unblocking key belongs to, recorded next to `unblockedBy` in the audit row. */
    unblockedByOwner?: string;
    reason: string;
  },
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
  await setTaskStatus(trx, input.tenantId, input.taskId, transition.status);
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
        ...(input.unblockedByOwner ? { unblocked_by_owner: input.unblockedByOwner } : {}),
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

/** A person's act moves the task (the lifecycle's transition was checked by the caller, under the task lock). */
async function setTaskStatus(
  trx: QueryExecutor,
  tenantId: string,
  taskId: string,
  status: TaskStatus,
): Promise<void> {
  await trx
    .updateTable('tasks')
    .set({ status, updated_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('task_id', '=', taskId)
    .execute();
}
