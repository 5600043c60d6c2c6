import { EXPIRY_ACTOR, isPastDeadline, transitionTask, type Gate, type TaskStatus } from '@warden/domain';
import type { GateRow, QueryExecutor } from '../database.js';
import { appendAudits } from '../core/audits.js';
import { toGate, type TaskKey } from '../core/tasks.js';
import { notificationPayload, recordNotifications } from '../notifications/outbox.js';
import { sql } from 'kysely';

export type ReleaseGateResult =
  | { status: 'released'; gate: Gate }
  | { status: 'not_found' }
  | { status: 'already_released'; gate: Gate }
  | { status: 'ambiguous'; gateIds: string[] }
  /** The gate's deadline passed: it is expired (now, if nobody had expired it yet) and its task blocked. */
  | { status: 'expired'; gate: Gate }
  /** A person denied the gate: it stays closed and its task blocked. */
  | { status: 'denied'; gate: Gate };

/**
 * Releases an open gate in one transaction: the gate is marked released (by whom), a `GATE_RELEASED` audit
 * row joins the tenant's chain, and a paused task goes back to `running` once no other gate holds it (the task
 * lifecycle's `gate_released` transition; a blocked task stays blocked).
 *
 * `gate` names the gate by its id or, when no gate of the task has that id, by the checkpoint of the task's
 * open gate — what a person reads in the task view. Two open gates at that checkpoint answer `ambiguous` with
 * their ids; none open but some released answers `already_released` with the latest, so a retry stays a 409.
 *
 * A gate past its deadline is never released, whether or not the sweeper has come by: it is expired here, in
 * this transaction (task blocked, `GATE_EXPIRED` audit), and the answer is `expired`.
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
    /** The clock the deadline is checked against. @defaultValue the current time */
    now?: Date;
  },
): Promise<ReleaseGateResult> {
  const now = input.now ?? new Date();
  const locked = await lockGateForAPerson(trx, input, now);
  if (locked.status !== 'open') return locked.result;
  const { task, gate } = locked;

  const released = await trx
    .updateTable('task_gates')
    .set({ state: 'released', released_at: now, released_by: input.releasedBy })
    .where('tenant_id', '=', input.tenantId)
    .where('gate_id', '=', gate.gate_id)
    .returningAll()
    .executeTakeFirstOrThrow();
  const stillOpen = await countOpenGates(trx, input.tenantId, input.taskId);
  const transition = transitionTask(task.status as TaskStatus, 'running', 'gate_released');
  if (stillOpen === 0 && transition.allowed && task.status === 'paused') {
    await setTaskStatus(trx, input.tenantId, input.taskId, transition.status);
  }
  await appendAudits(
    trx,
    [
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
    ],
    now,
  );
  return { status: 'released', gate: toGate(released) };
}

/**
 * The task row, then the gate a person acts on (by id or open checkpoint), both locked — the task first, as the
 * decision processor locks it, so no decision can open another gate between this check and the change. Answers
 * the result to return when the gate is not open: unknown, ambiguous, already closed, or past its deadline (it
 * is expired here, in this transaction).
 */
async function lockGateForAPerson(
  trx: QueryExecutor,
  input: { tenantId: string; taskId: string; gate: string },
  now: Date,
): Promise<
  | { status: 'open'; task: { status: string }; gate: GateRow }
  | { status: 'closed'; result: ReleaseGateResult }
> {
  const closed = (result: ReleaseGateResult) => ({ status: 'closed' as const, result });
  const task = await trx
    .selectFrom('tasks')
    .select('status')
    .where('tenant_id', '=', input.tenantId)
    .where('task_id', '=', input.taskId)
    .forUpdate()
    .executeTakeFirst();
  if (!task) return closed({ status: 'not_found' });
  const found = await findGateByIdOrCheckpoint(trx, input.tenantId, input.taskId, input.gate);
  if (found.status === 'already_released' && found.gate.state === 'expired')
    return closed({ status: 'expired', gate: found.gate });
  if (found.status === 'already_released' && found.gate.state === 'denied')
    return closed({ status: 'denied', gate: found.gate });
  if (found.status !== 'found') return closed(found);
  const gate = found.gate;
  if (gate.state === 'expired') return closed({ status: 'expired', gate: toGate(gate) });
  if (gate.state === 'denied') return closed({ status: 'denied', gate: toGate(gate) });
  if (gate.state === 'released') return closed({ status: 'already_released', gate: toGate(gate) });
  if (isPastDeadline(gate.expires_at, now))
    return closed({
      status: 'expired',
      gate: await expireLockedGate(trx, task.status as TaskStatus, gate, now),
    });
  return { status: 'open', task, gate };
}

export type DenyGateResult =
  Exclude<ReleaseGateResult, { status: 'released' }> | { status: 'denied_now'; gate: Gate };

/**
 * A person denies an open gate, with a reason, in one transaction: the gate closes as `denied` (by whom), the
 * paused task is blocked (the lifecycle's `gate_denied` transition; only a person's unblock lets it go on), and a
 * `GATE_DENIED` audit row joins the tenant's chain. Finds the gate as {@link releaseGate} does, and refuses the
 * same way a gate that is not open — one past its deadline is expired, not denied.
 */
export async function denyGate(
  trx: QueryExecutor,
  input: {
    tenantId: string;
    taskId: string;
    gate: string;
    deniedBy: string;
    /** The person or system the denying key belongs to, recorded next to `deniedBy` in the audit row. */
    deniedByOwner?: string;
    reason: string;
    /** The clock the deadline is checked against. @defaultValue the current time */
    now?: Date;
  },
): Promise<DenyGateResult> {
  const now = input.now ?? new Date();
  const locked = await lockGateForAPerson(trx, input, now);
  if (locked.status !== 'open') return locked.result as DenyGateResult;
  const { task, gate } = locked;
  const from = task.status as TaskStatus;
  const closed = await closeGateBlockingTask(trx, gate, from, {
    state: 'denied',
    by: input.deniedBy,
    why: 'gate_denied',
    now,
    eventType: 'GATE_DENIED',
    payload: (to) => ({
      gate_id: gate.gate_id,
      checkpoint: gate.checkpoint,
      denied_by: input.deniedBy,
      ...(input.deniedByOwner ? { denied_by_owner: input.deniedByOwner } : {}),
      reason: input.reason,
      from,
      to,
    }),
  });
  return { status: 'denied_now', gate: toGate(closed.row) };
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

/**
 * Closes an open gate without releasing it (`denied` by a person, `expired` by the clock) and blocks its task
 * when the lifecycle allows (`why`), with one audit row whose payload is given the status the task ends in — all
 * in the caller's transaction, which holds the task's row lock.
 */
async function closeGateBlockingTask(
  trx: QueryExecutor,
  gate: GateRow,
  taskStatus: TaskStatus,
  close: {
    state: 'denied' | 'expired';
    by: string;
    why: 'gate_denied' | 'gate_expired';
    now: Date;
    eventType: 'GATE_DENIED' | 'GATE_EXPIRED';
    payload: (to: TaskStatus) => Record<string, unknown>;
  },
): Promise<{ row: GateRow; blocked: boolean }> {
  const row = await trx
    .updateTable('task_gates')
    .set({ state: close.state, released_at: close.now, released_by: close.by })
    .where('tenant_id', '=', gate.tenant_id)
    .where('gate_id', '=', gate.gate_id)
    .returningAll()
    .executeTakeFirstOrThrow();
  const blocked = transitionTask(taskStatus, 'blocked', close.why).allowed && taskStatus !== 'blocked';
  if (blocked) await setTaskStatus(trx, gate.tenant_id, gate.task_id, 'blocked');
  await appendAudits(
    trx,
    [
      {
        tenant_id: gate.tenant_id,
        task_id: gate.task_id,
        event_type: close.eventType,
        level: 'warn',
        decision_id: null,
        event_id: null,
        source_event_ts: null,
        payload: close.payload(blocked ? 'blocked' : taskStatus),
      },
    ],
    close.now,
  );
  return { row, blocked };
}

/**
 * Expires one open gate whose deadline passed, with its task row already locked by the caller: the gate becomes
 * `expired` (by {@link EXPIRY_ACTOR}), a paused task is blocked (the lifecycle's `gate_expired` transition) and
 * a `GATE_EXPIRED` audit row joins the tenant's chain — all in the caller's transaction.
 */
async function expireLockedGate(
  trx: QueryExecutor,
  taskStatus: TaskStatus,
  gate: GateRow,
  now: Date,
): Promise<Gate> {
  const { row: expired, blocked } = await closeGateBlockingTask(trx, gate, taskStatus, {
    state: 'expired',
    by: EXPIRY_ACTOR,
    why: 'gate_expired',
    now,
    eventType: 'GATE_EXPIRED',
    payload: (to) => ({
      gate_id: gate.gate_id,
      checkpoint: gate.checkpoint,
      opened_at: gate.opened_at.toISOString(),
      expires_at: gate.expires_at.toISOString(),
      expired_by: EXPIRY_ACTOR,
      from: taskStatus,
      to,
    }),
  });
  await recordNotifications(trx, [
    {
      tenant_id: gate.tenant_id,
      event_type: 'gate.expired',
      subject: { kind: 'task', id: gate.task_id },
      summary: `Nobody released task ${gate.task_id} at checkpoint "${gate.checkpoint}" before ${gate.expires_at.toISOString()}; the task is ${blocked ? 'blocked' : taskStatus}.`,
      details: {
        task_id: gate.task_id,
        gate_id: gate.gate_id,
        checkpoint: gate.checkpoint,
        expires_at: gate.expires_at.toISOString(),
      },
      occurred_at: now,
    },
  ]);
  return toGate(expired);
}

/**
 * Records one "expires soon" notification for each open gate whose deadline falls within `withinMs` of `now`
 * (and has not passed), once per gate. Rows another replica is warning about are skipped (`SKIP LOCKED`).
 * Returns how many were warned.
 */
export async function warnExpiringGates(
  db: QueryExecutor,
  options: { withinMs: number; now?: Date; limit?: number },
): Promise<number> {
  const now = options.now ?? new Date();
  const horizon = new Date(now.getTime() + options.withinMs);
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<{
      tenant_id: string;
      task_id: string;
      gate_id: string;
      checkpoint: string;
      expires_at: Date;
    }>`
      update task_gates g set expiry_warned_at = ${now}
        from (select tenant_id, gate_id from task_gates
               where state = 'open' and expiry_warned_at is null
                 and expires_at > ${now} and expires_at <= ${horizon}
               order by expires_at limit ${options.limit ?? 200}
               for update skip locked) due
       where g.tenant_id = due.tenant_id and g.gate_id = due.gate_id
      returning g.tenant_id, g.task_id, g.gate_id, g.checkpoint, g.expires_at`.execute(trx);
    await recordNotifications(
      trx,
      rows.map((gate) => ({
        tenant_id: gate.tenant_id,
        event_type: 'gate.expiring' as const,
        subject: { kind: 'task' as const, id: gate.task_id },
        summary: `Task ${gate.task_id} waits at checkpoint "${gate.checkpoint}"; unless a person releases it by ${gate.expires_at.toISOString()}, it will be blocked.`,
        details: {
          task_id: gate.task_id,
          gate_id: gate.gate_id,
          checkpoint: gate.checkpoint,
          expires_at: gate.expires_at.toISOString(),
        },
        occurred_at: now,
      })),
    );
    return rows.length;
  });
}

export interface ExpireOverdueGatesResult {
  /** Gates this pass expired. */
  expired: number;
  /** Due gates left for a later pass: their task was locked (a release or a decision in flight) or moved on. */
  skipped: number;
}

/**
 * One sweep: expires open gates whose deadline is at or before `now`, oldest deadline first, at most `limit`.
 * Each gate is its own transaction that takes the task row `FOR UPDATE SKIP LOCKED` — the lock a release and
 * a decision take first — so replicas sweeping at once never wait on each other or on a person, and a gate
 * released (or expired by another replica) meanwhile is seen as no longer open and left alone. Idempotent.
 */
export async function expireOverdueGates(
  db: QueryExecutor,
  options: { now?: Date; limit?: number } = {},
): Promise<ExpireOverdueGatesResult> {
  const now = options.now ?? new Date();
  const due = await db
    .selectFrom('task_gates')
    .select(['tenant_id', 'task_id', 'gate_id'])
    .where('state', '=', 'open')
    .where('expires_at', '<=', now)
    .orderBy('expires_at')
    .limit(options.limit ?? 100)
    .execute();
  let expired = 0;
  for (const candidate of due) {
    const done = await db.transaction().execute(async (trx) => {
      const task = await trx
        .selectFrom('tasks')
        .select('status')
        .where('tenant_id', '=', candidate.tenant_id)
        .where('task_id', '=', candidate.task_id)
        .forUpdate()
        .skipLocked()
        .executeTakeFirst();
      if (!task) return false;
      const gate = await trx
        .selectFrom('task_gates')
        .selectAll()
        .where('tenant_id', '=', candidate.tenant_id)
        .where('gate_id', '=', candidate.gate_id)
        .forUpdate()
        .executeTakeFirst();
      if (!gate || gate.state !== 'open' || !isPastDeadline(gate.expires_at, now)) return false;
      await expireLockedGate(trx, task.status as TaskStatus, gate, now);
      return true;
    });
    if (done) expired += 1;
  }
  return { expired, skipped: due.length - expired };
}

export interface NewGate extends TaskKey {
  gate_id: string;
  checkpoint: string;
  reason: string;
  decision_id: string | null;
  /** The deadline (see `gateDeadline`). @defaultValue 24 hours after the insert (the column's default) */
  expires_at?: Date;
}

/**
 * Opens gates in the caller's transaction (a redelivered decision opens none twice) and records a
 * `gate.opened` notification for each gate it opened, in the same transaction and the same statement.
 */
export async function openGates(trx: QueryExecutor, gates: readonly NewGate[]): Promise<void> {
  if (gates.length === 0) return;
  const notifications = gates.map((g) => ({
    tenant_id: g.tenant_id,
    gate_id: g.gate_id,
    // The deadline is filled in from the inserted row (it may be the column's default).
    payload: notificationPayload({
      subject: { kind: 'task', id: g.task_id },
      summary: `Task ${g.task_id} is paused at checkpoint "${g.checkpoint}" and waits for a person: ${g.reason}`,
      details: {
        task_id: g.task_id,
        gate_id: g.gate_id,
        checkpoint: g.checkpoint,
        reason: g.reason,
        decision_id: g.decision_id,
      },
    }),
  }));
  // `expires_at` defaults as the column does (24 hours after the insert); in the notification it is written
  // as JavaScript's toISOString() writes it, milliseconds and `Z`.
  await sql`
    with opened as (
      insert into task_gates (tenant_id, task_id, gate_id, checkpoint, reason, decision_id, expires_at)
      select tenant_id, task_id, gate_id, checkpoint, reason, decision_id, coalesce(expires_at, now() + interval '24 hours')
        from jsonb_to_recordset(${JSON.stringify(gates.map((g) => ({ ...g, expires_at: g.expires_at ?? null })))}::jsonb)
             as g(tenant_id text, task_id text, gate_id text, checkpoint text, reason text, decision_id text, expires_at timestamptz)
      on conflict (tenant_id, gate_id) do nothing
      returning tenant_id, gate_id, expires_at
    )
    insert into notification_outbox (tenant_id, event_type, payload)
    select o.tenant_id, 'gate.opened',
           jsonb_set(n.payload, '{details,expires_at}', to_jsonb(to_char(o.expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))
      from opened o
      join jsonb_to_recordset(${JSON.stringify(notifications)}::jsonb) as n(tenant_id text, gate_id text, payload jsonb)
        on n.tenant_id = o.tenant_id and n.gate_id = o.gate_id`.execute(trx);
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
