import type { TaskStatus } from '../tasks.js';

/**
 * The task state machine: the one place that says how a task's status may change. Everything that moves a
 * task — a policy's decision, a person releasing a gate or unblocking a task, the agent finishing it — asks
 * {@link transitionTask}, and the table below is documented in docs/supervisor.md.
 *
 * The rule that makes gates hold: an agent's events can make a task stricter, never looser. `paused` and
 * `blocked` are left only by a person's audited act, and a finished task stays finished.
 */

/** What asks for a status change. */
export type TransitionCause =
  /** A decision on one of the agent's events (including its own TASK_STATE_CHANGED). */
  | 'decision'
  /** A person released the last open gate of a paused task. */
  | 'gate_released'
  /** A person unblocked a blocked task, with a reason (to `paused` while any of its gates is still open). */
  | 'unblocked'
  /** Nobody released a gate before its deadline: the request is denied, the task blocked. */
  | 'gate_expired'
  /** A person denied a gate, with a reason: the task is blocked. */
  | 'gate_denied';

/** Statuses in which the task may act: no gate holds it and it has not finished. */
export const ACTIVE_STATUSES = [
  'pending',
  'draft',
  'ready',
  'running',
  'verifying',
  'retrying',
] as const satisfies readonly TaskStatus[];
/** Statuses an agent's event can never leave. */
export const HELD_STATUSES = ['paused', 'blocked'] as const satisfies readonly TaskStatus[];
/** Statuses nothing leaves. */
export const FINISHED_STATUSES = [
  'completed',
  'failed',
  'cancelled',
] as const satisfies readonly TaskStatus[];
/** A task in one of these holds the exclusive resources it declared; blocked and finished tasks release them. */
export const RESOURCE_HOLDING_STATUSES = [
  'running',
  'verifying',
  'retrying',
  'paused',
] as const satisfies readonly TaskStatus[];

const ACTIVE = new Set<TaskStatus>(ACTIVE_STATUSES);
const FINISHED = new Set<TaskStatus>(FINISHED_STATUSES);

/**
 * Legal transitions, by cause. A status may always "move" to itself. Anything not listed is refused:
 * the task keeps its status and the caller records why.
 */
export const TASK_TRANSITIONS: Readonly<
  Record<TransitionCause, Readonly<Partial<Record<TaskStatus, readonly TaskStatus[]>>>>
> = {
  decision: {
    ...Object.fromEntries(
      ACTIVE_STATUSES.map((from) => [from, [...ACTIVE_STATUSES, 'paused', 'blocked', ...FINISHED_STATUSES]]),
    ),
    // Held: only stricter. A paused task may become blocked; a blocked task stays blocked.
    paused: ['blocked'],
    blocked: [],
    completed: [],
    failed: [],
    cancelled: [],
  },
  gate_released: { paused: ['running'] },
  // Back to paused when gates opened before the block are still open: unblocking does not release them.
  unblocked: { blocked: ['running', 'paused'] },
  // Stricter only: an expired gate denies. A task already blocked stays blocked.
  gate_expired: { paused: ['blocked'] },
  // A person's no: as strict as an expiry.
  gate_denied: { paused: ['blocked'] },
};

export type TransitionResult =
  { allowed: true; status: TaskStatus } | { allowed: false; status: TaskStatus; reason: string };

/**
 * Whether `from` may become `to` for this cause. `from` is `undefined` on first sight of a task, which is
 * the same as `pending`. A refused transition returns the status the task keeps and a reason to record.
 */
export function transitionTask(
  from: TaskStatus | undefined,
  to: TaskStatus,
  cause: TransitionCause,
): TransitionResult {
  const current = from ?? 'pending';
  if (current === to) return { allowed: true, status: to };
  const legal = TASK_TRANSITIONS[cause][current] ?? [];
  if (legal.includes(to)) return { allowed: true, status: to };
  return { allowed: false, status: current, reason: refusalReason(current, to, cause) };
}

const CAUSE_VERBS: Record<Exclude<TransitionCause, 'decision'>, string> = {
  gate_released: 'released',
  unblocked: 'unblocked',
  gate_expired: 'expired',
  gate_denied: 'denied',
};

function refusalReason(from: TaskStatus, to: TaskStatus, cause: TransitionCause): string {
  if (cause !== 'decision') return `a task that is ${from} cannot be ${CAUSE_VERBS[cause]} to ${to}`;
  if (from === 'blocked') return 'task is blocked; only a person can unblock it';
  if (from === 'paused') return 'task is paused at an open gate; only a person can release it';
  if (FINISHED.has(from)) return `task is ${from}; a finished task takes no further work`;
  return `a task that is ${from} cannot become ${to}`;
}

/** How a task's status constrains decisions on its events: `undefined` when it may act freely. */
export function heldBy(status: TaskStatus | undefined): 'paused' | 'blocked' | 'finished' | undefined {
  if (status === undefined || ACTIVE.has(status)) return undefined;
  if (status === 'paused' || status === 'blocked') return status;
  return 'finished';
}

export function isFinished(status: TaskStatus | undefined): boolean {
  return status !== undefined && FINISHED.has(status);
}

export function holdsResources(status: TaskStatus | undefined): boolean {
  return status !== undefined && (RESOURCE_HOLDING_STATUSES as readonly TaskStatus[]).includes(status);
}
