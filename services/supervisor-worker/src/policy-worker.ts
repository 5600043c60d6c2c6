import { readlinkSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import {
  builtInPolicies,
  decide,
  decideInOrder,
  type DecisionPlan,
  type DecisionState,
  type PolicyRegistry,
  type SupervisorPolicyFile,
  type TaskEvent,
} from '@warden/domain';

/** What the sandbox hands a worker when it starts. */
export interface PolicyWorkerData {
  entry: string;
  policy: SupervisorPolicyFile;
  /** A module whose `createPolicyRegistry()` replaces the built-in policies. */
  registryModule?: string;
  /** Shared with the sandbox's watchdog: [call id, index of the event being decided]. */
  progress: SharedArrayBuffer;
}

export interface PolicyCall {
  id: number;
  events: TaskEvent[];
  state: DecisionState;
  /** Tenants decided under a stored version rather than the thread's bootstrap policy: their policy. */
  policies?: Map<string, SupervisorPolicyFile>;
}

export type PolicyWorkerMessage =
  | { kind: 'ready'; tid: number | undefined }
  | { kind: 'decided'; id: number; plans: DecisionPlan[] }
  | { kind: 'error'; id: number; error: string };

/** The kernel's id of this thread, so the parent can read its CPU time; undefined where /proc has no thread-self. */
function ownThreadId(): number | undefined {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return undefined;
  }
}

/**
 * Runs in a worker thread: decides each call's events in order and posts the plans back. Before each event
 * it writes the event's index where the parent's watchdog reads it, so a policy that runs away is stopped
 * (the thread is terminated) without the parent's event loop ever waiting on it.
 */
export function runPolicyWorker(customRegistry: PolicyRegistry | undefined): void {
  const port = parentPort;
  if (!port) throw new Error('runPolicyWorker must run in a worker thread');
  const data = workerData as PolicyWorkerData;
  const registry = customRegistry ?? builtInPolicies();
  const progress = new Int32Array(data.progress);
  port.on('message', (call: PolicyCall) => {
    Atomics.store(progress, 0, call.id);
    try {
      const stored = call.policies;
      const choice =
        stored && stored.size > 0 ? (tenantId: string) => stored.get(tenantId) ?? data.policy : data.policy;
      const plans = decideInOrder(call.events, call.state, choice, registry, (index) =>
        Atomics.store(progress, 1, index),
      );
      port.postMessage({ kind: 'decided', id: call.id, plans } satisfies PolicyWorkerMessage);
    } catch (error) {
      port.postMessage({
        kind: 'error',
        id: call.id,
        error: error instanceof Error ? error.message : String(error),
      } satisfies PolicyWorkerMessage);
    }
  });
  warmUp(registry, data.policy);
  port.postMessage({ kind: 'ready', tid: ownThreadId() } satisfies PolicyWorkerMessage);
}

/**
 * Decides one made-up event of each built-in type before the thread reports ready: the first shell parse
 * loads and compiles the parser, which costs more CPU than the budget allows, and must not be charged to a
 * real event.
 */
function warmUp(registry: PolicyRegistry, policy: SupervisorPolicyFile): void {
  const task = { status: undefined, metadata: {}, retry_count: 0 };
  const payloads: Record<string, Record<string, unknown>> = {
    TASK_CREATED: {
      agent_spec: { name: 'warm-up', capabilities: ['file_write'] },
      command_spec: { name: 'warm-up', command: 'sh -c "ls -la /tmp | grep x > out.txt"', args: [] },
    },
    TASK_STEP_COMPLETED: { risk_indicators: { error_rate: 0 } },
    TASK_FAILED: { error: 'connection refused' },
  };
  for (const [eventType, payload] of Object.entries(payloads)) {
    const event = {
      event_id: 'warm-up',
      tenant_id: 'warm-up',
      task_id: 'warm-up',
      event_type: eventType,
      ts: new Date(0).toISOString(),
      source: 'queue' as const,
      payload,
    };
    try {
      decide({ event, task: { ...task }, runningTasks: [], config: policy }, registry);
    } catch {
      // A custom policy that throws on this event throws again on a real one, and fails closed there.
    }
  }
}
