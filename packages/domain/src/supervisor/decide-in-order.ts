import type { TaskEvent } from '../events.js';
import type { SupervisorPolicyFile } from '../policy-file.js';
import { decide, type DecisionPlan } from './decide.js';
import { asStringArray, type RunningTaskResources, type TaskContext } from './policy.js';
import type { PolicyRegistry } from './policy-registry.js';
import { holdsResources } from './task-lifecycle.js';

/**
 * What a run of decisions reads and changes: each task's context by {@link taskStateKey}, and each tenant's
 * tasks that hold exclusive resources. Plain maps, so the state crosses a worker boundary as it is.
 */
export interface DecisionState {
  tasks: Map<string, TaskContext>;
  holders: Map<string, RunningTaskResources[]>;
}

/**
 * The policy file events are decided under: one for every event, or chosen per tenant (each tenant's active
 * stored version). Chosen once per run by the caller, so a run never mixes two versions of a tenant's policy.
 */
export type PolicyChoice = SupervisorPolicyFile | ((tenantId: string) => SupervisorPolicyFile);

function policyOf(choice: PolicyChoice, tenantId: string): SupervisorPolicyFile {
  return typeof choice === 'function' ? choice(tenantId) : choice;
}

export function taskStateKey(key: { tenant_id: string; task_id: string }): string {
  return `${key.tenant_id}\u0000${key.task_id}`;
}

/**
 * Decides events one after the other, each seeing the effects of the ones before it (a task's status,
 * retry count and metadata; who holds which resource). The caller gives the events in the order they must
 * apply — a task's events in inbox order. `onEvent(i)` is called before event `i` is decided, so a watchdog
 * can tell which event a runaway policy is stuck on.
 */
export function decideInOrder(
  events: readonly TaskEvent[],
  state: DecisionState,
  config: PolicyChoice,
  registry: PolicyRegistry,
  onEvent?: (index: number) => void,
): DecisionPlan[] {
  return events.map((event, index) => {
    onEvent?.(index);
    const plan = decide(inputFor(event, state, config), registry);
    applyPlan(state, event, plan);
    return plan;
  });
}

/** The policy input for `event` given the state so far. The task must be in `state.tasks`. */
export function inputFor(event: TaskEvent, state: DecisionState, config: PolicyChoice) {
  const task = state.tasks.get(taskStateKey(event));
  if (!task) throw new Error(`no task context for ${event.tenant_id}/${event.task_id}`);
  return {
    event,
    task,
    runningTasks: state.holders.get(event.tenant_id) ?? [],
    config: policyOf(config, event.tenant_id),
  };
}

/**
 * Carries a decision's effects into the state: the task's new status (a task first seen and not given one
 * starts `running`), retry count and metadata, and whether it now holds its declared resources.
 */
export function applyPlan(state: DecisionState, event: TaskEvent, plan: DecisionPlan): void {
  const key = taskStateKey(event);
  const task = state.tasks.get(key);
  if (!task) throw new Error(`no task context for ${event.tenant_id}/${event.task_id}`);
  task.status = plan.task.status ?? task.status ?? 'running';
  task.retry_count = plan.task.retry_count ?? task.retry_count;
  task.metadata = plan.task.metadata ?? task.metadata;

  const others = (state.holders.get(event.tenant_id) ?? []).filter(
    (holder) => holder.task_id !== event.task_id,
  );
  const resources = asStringArray(task.metadata.exclusive_resources);
  if (holdsResources(task.status) && resources.length > 0) others.push({ task_id: event.task_id, resources });
  state.holders.set(event.tenant_id, others);
}
