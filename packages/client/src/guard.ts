/**
 * Guarded actions: `warden.guard(taskId, action)` asks Warden before the agent acts. It sends a
 * `TASK_ACTION_PROPOSED` event with `Prefer: wait` and reads the decision from the reply — no polling.
 * Importing the package installs the method on {@link WardenClient} (like the change-set methods).
 */
import { ACTIVE_STATUSES, type ActionProposalSchema, type TaskStatus, type TaskView } from '@warden/domain';
import { WardenBlockedError, WardenGuardTimeoutError, type GuardDecision } from './errors.js';
import { newEventId } from './event-ids.js';
import { requestJson, type HttpSettings } from './http.js';
import { sleep } from './retry.js';
import { WardenClient } from './warden-client.js';

/** What the agent is about to do (`z.input` of the domain's `ActionProposalSchema`): at least one of tool, command, paths, hosts. */
export type GuardAction = (typeof ActionProposalSchema)['_zod']['input'];

/** The most seconds the API waits for a decision (`Prefer: wait` is capped there). */
export const MAX_GUARD_WAIT_SECONDS = 10;

export interface GuardOptions {
  /** Seconds to wait for the decision, 0–10. @defaultValue `10` */
  waitSeconds?: number;
  /**
   * What a wait without a decision means. `'deny'` throws {@link WardenGuardTimeoutError}; `'allow'` resolves
   * `{ status: 'allowed', decision: undefined, timedOut: true }` — only for actions you would run unguarded.
   * @defaultValue `'deny'`
   */
  onTimeout?: 'deny' | 'allow';
  /** The event id of this proposal (re-sending the same id picks up the same decision). @defaultValue a new random id */
  eventId?: string;
  /** Carried to the decision's audit row. @defaultValue none */
  traceId?: string;
}

export interface WaitForReleaseOptions {
  /** Give up (rejecting with {@link WardenGuardTimeoutError}) after this long. @defaultValue `3600000` (one hour) */
  timeoutMs?: number;
  /** Time between two reads of the task: a release is a person's act, seconds apart. @defaultValue `1000` */
  intervalMs?: number;
  /** Stops waiting (rejecting with the signal's reason). @defaultValue none */
  signal?: AbortSignal;
}

/** The action may run. */
export interface GuardAllowed {
  status: 'allowed';
  /** The ALLOW decision; `undefined` only when `onTimeout: 'allow'` let a wait without a decision through. */
  decision: GuardDecision | undefined;
  timedOut: boolean;
}

/** The action waits for a person: the task is paused. The agent must not run it before `waitForRelease()` resolves. */
export interface GuardPaused {
  status: 'paused';
  decision: GuardDecision;
  /**
   * Resolves when a person releases the gate this decision opened (or, when the task was already held by
   * another gate, once the task is free again and the same action, proposed anew, is allowed). Rejects with
   * {@link WardenBlockedError} if the task is blocked or ends meanwhile (a denied or expired gate), and with
   * {@link WardenGuardTimeoutError} past `timeoutMs`.
   */
  waitForRelease(options?: WaitForReleaseOptions): Promise<void>;
}

export type GuardResult = GuardAllowed | GuardPaused;

declare module './warden-client.js' {
  interface WardenClient {
    /**
     * Asks Warden whether the agent may run `action` now (scope `events:write`). Resolves `{ status: 'allowed' }`
     * on ALLOW; throws {@link WardenBlockedError} on BLOCK; returns a {@link GuardPaused} handle when the
     * action must wait for a person; throws {@link WardenGuardTimeoutError} when no decision came in time
     * (unless `onTimeout: 'allow'`). A connection failure throws `WardenConnectionError`: never allowed.
     *
     * @example
     * ```ts
     * const verdict = await warden.guard('task-42', { command: 'git push origin main' });
     * if (verdict.status === 'paused') await verdict.waitForRelease();
     * await run('git push origin main');
     * ```
     */
    guard(taskId: string, action: GuardAction, options?: GuardOptions): Promise<GuardResult>;
  }
}

interface WaitedIngestResult {
  decisions: GuardDecision[];
  pending: string[];
}

const httpOf = (client: WardenClient) => (client as unknown as { http: HttpSettings }).http;
const ACTIVE = new Set<TaskStatus>(ACTIVE_STATUSES);

WardenClient.prototype.guard = async function (
  this: WardenClient,
  taskId: string,
  action: GuardAction,
  options: GuardOptions = {},
): Promise<GuardResult> {
  const waitSeconds = options.waitSeconds ?? MAX_GUARD_WAIT_SECONDS;
  if (!Number.isInteger(waitSeconds) || waitSeconds < 0 || waitSeconds > MAX_GUARD_WAIT_SECONDS)
    throw new RangeError(`guard: waitSeconds must be a whole number from 0 to 10, got ${waitSeconds}`);
  const eventId = options.eventId ?? newEventId();
  const http = httpOf(this);
  const body = (await requestJson(
    http,
    'POST',
    '/v1/events',
    {
      event_id: eventId,
      task_id: taskId,
      event_type: 'TASK_ACTION_PROPOSED',
      payload: { action },
      ...(options.traceId ? { trace_id: options.traceId } : {}),
    },
    // The attempt must outlive the server's wait, or every guard would time out on the client first.
    {
      headers: { prefer: `wait=${waitSeconds}` },
      timeoutMs: Math.max(http.timeoutMs, waitSeconds * 1000 + 5000),
    },
  )) as Partial<WaitedIngestResult> | undefined;

  const decision = body?.decisions?.find((d) => d.event_id === eventId);
  if (!decision) {
    if (options.onTimeout === 'allow') return { status: 'allowed', decision: undefined, timedOut: true };
    throw new WardenGuardTimeoutError(
      `no decision on action ${eventId} of task ${taskId} within ${waitSeconds} s: not allowed`,
      { taskId, eventId },
    );
  }
  if (decision.decision_type === 'ALLOW') return { status: 'allowed', decision, timedOut: false };
  if (decision.decision_type === 'PAUSE' || decision.decision_type === 'REQUIRE_REVIEW') {
    return {
      status: 'paused',
      decision,
      waitForRelease: (waitOptions = {}) =>
        waitForRelease(this, taskId, action, options, decision, waitOptions),
    };
  }
  throw new WardenBlockedError(`action not allowed: ${decision.decision_type}: ${decision.reason}`, {
    taskId,
    decision,
  });
};

async function waitForRelease(
  client: WardenClient,
  taskId: string,
  action: GuardAction,
  guardOptions: GuardOptions,
  decision: GuardDecision,
  options: WaitForReleaseOptions,
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 3_600_000);
  const intervalMs = options.intervalMs ?? 1000;
  // The gate this decision opened, if it opened one (decide.ts names it after the decision).
  const ownGate = decision.actions.some((a) => a.action_type === 'pause_gate')
    ? `gate-${decision.decision_id}`
    : undefined;
  for (;;) {
    options.signal?.throwIfAborted();
    const task: TaskView = await client.getTask(taskId);
    if (!ACTIVE.has(task.status) && task.status !== 'paused')
      throw new WardenBlockedError(`task ${taskId} is ${task.status}: the paused action will not run`, {
        taskId,
        decision,
      });
    const ownGateOpen = ownGate !== undefined && task.open_gates.some((gate) => gate.gate_id === ownGate);
    if (ownGate !== undefined && !ownGateOpen) return;
    if (ownGate === undefined && task.status !== 'paused') {
      // Held by someone else's gate: this action was never looked at by a person, so it is judged again.
      const again = await client.guard(taskId, action, { ...guardOptions, eventId: newEventId() });
      if (again.status === 'allowed') return;
      return again.waitForRelease({ ...options, timeoutMs: Math.max(0, deadline - Date.now()) });
    }
    if (Date.now() + intervalMs > deadline)
      throw new WardenGuardTimeoutError(
        `the gate of action ${decision.event_id} was not released in time: not allowed`,
        {
          taskId,
          eventId: decision.event_id,
        },
      );
    await sleep(intervalMs);
  }
}
