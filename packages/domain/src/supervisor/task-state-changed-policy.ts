import type { TaskStatus } from '../tasks.js';
import { actions, type Policy, type PolicyOutcome } from './policy.js';
import { FINISHED_STATUSES } from './task-lifecycle.js';

/** Where producers put the new state: `status`, `state` or `to`, first one that is a string. */
function reportedState(payload: Record<string, unknown>): string | undefined {
  for (const key of ['status', 'state', 'to']) {
    const value = payload[key];
    if (typeof value === 'string' && value.trim() !== '') return value.trim().toLowerCase();
  }
  return undefined;
}

/**
 * TASK_STATE_CHANGED: recorded and audited. The one state an agent may set itself is a finishing one
 * (`completed`, `failed`, `cancelled`) — finishing releases the task's exclusive resources. Any other reported
 * state changes nothing: statuses are Warden's to decide. Whether a finish applies is the lifecycle's call (a
 * paused or blocked task is not finished by its own agent).
 */
export const taskStateChangedPolicy: Policy = {
  name: 'task_state_changed',
  version: '1',
  evaluate({ event }): PolicyOutcome {
    const state = reportedState(event.payload);
    if (state !== undefined && (FINISHED_STATUSES as readonly string[]).includes(state)) {
      return {
        decision_type: 'ALLOW',
        reason: `task finished: ${state}`,
        findings: [],
        actions: [actions.writeAudit()],
        task: { status: state as TaskStatus },
      };
    }
    const reason =
      state === undefined
        ? 'state change recorded; no status, state or to field was given'
        : `state change to "${state.slice(0, 100)}" recorded; an agent may only finish a task (completed, failed, cancelled)`;
    return { decision_type: 'ALLOW', reason, findings: [], actions: [actions.writeAudit()] };
  },
};
