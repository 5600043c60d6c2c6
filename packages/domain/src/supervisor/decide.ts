import type { AuditLevel, TaskStatus } from '../tasks.js';
import { deterministicId } from '../canonical-json.js';
import type { Decision, DecisionType } from '../decisions.js';
import type { EnforcementMode } from '../policy-file.js';
import { toStorableJson } from '../validation.js';
import { actions, type Policy, type PolicyInput, type PolicyOutcome } from './policy.js';
import { heldBy, transitionTask } from './task-lifecycle.js';
import type { PolicyRegistry } from './policy-registry.js';

/** Audit event type and level of each decision type (docs/supervisor.md). */
export const AUDIT_OF_DECISION: Record<DecisionType, { event_type: string; level: AuditLevel }> = {
  ALLOW: { event_type: 'SUPERVISOR_ALLOWED', level: 'info' },
  PAUSE: { event_type: 'SUPERVISOR_PAUSED', level: 'warn' },
  BLOCK: { event_type: 'SUPERVISOR_BLOCKED', level: 'warn' },
  RETRY: { event_type: 'SUPERVISOR_RETRY_RECOMMENDED', level: 'info' },
  REQUIRE_REVIEW: { event_type: 'SUPERVISOR_DECISION', level: 'warn' },
};

export const REVIEW_CHECKPOINT = 'supervisor_review';

/** Everything one event's decision changes, to be applied in one transaction. */
export interface DecisionPlan {
  decision: Decision;
  task: NonNullable<PolicyOutcome['task']>;
  /** A pause gate to open, when the decision pauses the task. */
  gate?: { gate_id: string; checkpoint: string; reason: string };
  /** The decision's audit row, then any extra rows (SUPERVISOR_ERROR when the policy failed). */
  audits: Array<{
    event_type: string;
    level: AuditLevel;
    decision_id: string | null;
    payload: Record<string, unknown>;
  }>;
  enforcement: EnforcementMode;
}

/** The decision id of an event: derived, so every delivery of the event computes the same one. */
export function decisionIdFor(tenantId: string, eventId: string): string {
  return deterministicId('decision', tenantId, eventId);
}

/** Tenant setting first, then event type, then the file's default. */
export function enforcementFor(input: PolicyInput): EnforcementMode {
  const { enforcement } = input.config;
  // Own keys only: a tenant named "constructor" must not pick up Object.prototype.constructor.
  const own = (table: Record<string, EnforcementMode>, key: string) =>
    Object.hasOwn(table, key) ? table[key] : undefined;
  return (
    own(enforcement.tenants, input.event.tenant_id) ??
    own(enforcement.event_types, input.event.event_type) ??
    enforcement.default
  );
}

/** Why a policy produced no usable outcome: it threw, or the sandbox stopped it past its budget. */
export interface PolicyFailure {
  error: string;
  /** CPU time the policy used before it was stopped (or threw), when known. */
  elapsed_ms: number;
}

/**
 * Decides on one event: routes it to its policy, evaluates it, applies monitor mode and then the task
 * lifecycle, and fails closed — a policy that throws gives REQUIRE_REVIEW with a pause gate and a
 * SUPERVISOR_ERROR audit, never ALLOW. A policy that runs too long cannot be stopped from inside a synchronous
 * call: the supervisor runs `decide` in a sandboxed worker with a CPU-time deadline and, past it, records
 * {@link decideFailClosed} instead.
 */
export function decide(input: PolicyInput, registry: PolicyRegistry): DecisionPlan {
  const policy = registry.route(input.event.event_type);
  try {
    const outcome = policy.evaluate(input);
    const problem = malformedOutcome(outcome);
    if (problem) throw new Error(`returned a malformed outcome: ${problem}`);
    return planDecision(input, policy, outcome);
  } catch (error) {
    return decideFailClosed(input, registry, {
      error: `policy ${policy.name} threw: ${describeThrown(error)}`,
      elapsed_ms: 0,
    });
  }
}

const DECISION_TYPES = new Set<string>(Object.keys(AUDIT_OF_DECISION));

/** What is wrong with an outcome a (custom) policy returned, if anything: it must be recordable as it is. */
function malformedOutcome(outcome: unknown): string | undefined {
  if (outcome === null || typeof outcome !== 'object') return 'not an object';
  const o = outcome as Partial<PolicyOutcome>;
  if (typeof o.decision_type !== 'string' || !DECISION_TYPES.has(o.decision_type))
    return `decision_type ${JSON.stringify(o.decision_type)} is not one of ${[...DECISION_TYPES].join(', ')}`;
  if (typeof o.reason !== 'string') return 'reason is not a string';
  if (!Array.isArray(o.findings)) return 'findings is not an array';
  if (!Array.isArray(o.actions)) return 'actions is not an array';
  return undefined;
}

/** The decision for an event whose policy failed: REQUIRE_REVIEW at a review gate, plus a SUPERVISOR_ERROR audit. */
export function decideFailClosed(
  input: PolicyInput,
  registry: PolicyRegistry,
  failure: PolicyFailure,
): DecisionPlan {
  const policy = registry.route(input.event.event_type);
  const reason = `fail closed: ${failure.error}`;
  const outcome: PolicyOutcome = {
    decision_type: 'REQUIRE_REVIEW',
    reason,
    findings: [],
    actions: [actions.pauseGate(reason, REVIEW_CHECKPOINT), actions.writeAudit()],
    task: { status: 'paused' },
  };
  return planDecision(input, policy, outcome, failure);
}

function describeThrown(error: unknown): string {
  if (error instanceof Error) return error.message;
  try {
    return String(error);
  } catch {
    return 'an unprintable value';
  }
}

function planDecision(
  input: PolicyInput,
  policy: Policy,
  policyOutcome: PolicyOutcome,
  failure?: PolicyFailure,
): DecisionPlan {
  const { event, config } = input;
  const decisionId = decisionIdFor(event.tenant_id, event.event_id);
  const enforcement = enforcementFor(input);
  let outcome = policyOutcome;

  let wouldHave: DecisionType | undefined;
  // Monitor mode softens what a policy decided, never a failure to decide: REQUIRE_REVIEW means the gate
  // could not read its input, and unreadable must not become allowed.
  if (
    enforcement === 'monitor' &&
    outcome.decision_type !== 'ALLOW' &&
    outcome.decision_type !== 'REQUIRE_REVIEW'
  ) {
    wouldHave = outcome.decision_type;
    // Detection only: keep what the policy saw, enforce nothing; metadata the policy learned is still kept.
    outcome = {
      decision_type: 'ALLOW',
      reason: `monitor mode: would have decided ${wouldHave}: ${outcome.reason}`,
      findings: outcome.findings,
      actions: [actions.writeAudit()],
      task: outcome.task?.metadata ? { metadata: outcome.task.metadata } : {},
    };
  }
  const held = holdTaskToItsStatus(input.task.status, outcome);
  outcome = held.outcome;

  const decision: Decision = {
    decision_id: decisionId,
    decision_type: outcome.decision_type,
    reason: outcome.reason,
    findings: outcome.findings.map((f, index) => ({ ...f, finding_id: `${decisionId}/${index + 1}` })),
    actions: outcome.actions,
    policy: policy.name,
    policy_version: `${policy.version}+${config.version}`,
    ...(wouldHave ? { would_have: wouldHave } : {}),
  };

  const pause = decision.actions.find((a) => a.action_type === 'pause_gate');
  const gate = pause
    ? {
        gate_id: `gate-${decisionId}`,
        checkpoint: String(pause.params.checkpoint ?? 'open_plan'),
        reason: decision.reason,
      }
    : undefined;

  const audit = AUDIT_OF_DECISION[decision.decision_type];
  const audits: DecisionPlan['audits'] = [
    {
      ...audit,
      decision_id: decisionId,
      payload: {
        decision_type: decision.decision_type,
        reason: decision.reason,
        findings: decision.findings,
        actions: decision.actions,
        policy: decision.policy,
        policy_version: decision.policy_version,
        event_id: event.event_id,
        event_type: event.event_type,
        source: event.source,
        enforcement,
        ...(wouldHave ? { would_have: wouldHave } : {}),
        ...(held.policyDecided ? { policy_decided: held.policyDecided, task_status: input.task.status } : {}),
        ...(decision.decision_type === 'RETRY' ? { retry_count: outcome.task?.retry_count } : {}),
        ...(event.trace_id ? { trace_id: event.trace_id } : {}),
      },
    },
  ];
  if (failure) {
    audits.push({
      event_type: 'SUPERVISOR_ERROR',
      level: 'error',
      decision_id: null,
      payload: {
        error: failure.error,
        elapsed_ms: Math.round(failure.elapsed_ms),
        policy: policy.name,
        event_id: event.event_id,
        event_type: event.event_type,
      },
    });
  }
  // Everything here is written to Postgres: make sure it can be (see toStorableJson), or the decision is lost.
  return {
    decision: toStorableJson(decision),
    task: outcome.task ?? {},
    ...(gate ? { gate: toStorableJson(gate) } : {}),
    audits: toStorableJson(audits),
    enforcement,
  };
}

/**
 * Applies the task lifecycle to what the policy decided. A task that is free to act takes the outcome as it
 * is (its proposed status must still be a legal transition). A held task — paused, blocked or finished —
 * keeps its status, its metadata and its retry count whatever its own events say; the decision tells the
 * agent so (BLOCK for blocked or finished, PAUSE for paused) and keeps the policy's findings for the trail.
 * The one move allowed is stricter still: a paused task the policy blocks becomes blocked.
 */
function holdTaskToItsStatus(
  status: TaskStatus | undefined,
  outcome: PolicyOutcome,
): { outcome: PolicyOutcome; policyDecided?: DecisionType } {
  const proposed = outcome.task?.status;
  const hold = heldBy(status);
  // A task free to act may move to any status (see TASK_TRANSITIONS): the policy's outcome stands.
  if (hold === undefined) return { outcome };
  if (
    hold === 'paused' &&
    proposed !== undefined &&
    proposed !== 'paused' &&
    transitionTask(status, proposed, 'decision').allowed
  ) {
    // Stricter: blocked. Only the status moves; what the agent declared is not taken from a held task.
    return { outcome: { ...outcome, task: { status: proposed } } };
  }
  if (
    hold === 'paused' &&
    (outcome.decision_type === 'PAUSE' || outcome.decision_type === 'REQUIRE_REVIEW')
  ) {
    // Another reason to stop: the decision stands and opens its own gate; the task stays paused.
    return { outcome: { ...outcome, task: {} } };
  }
  const refusal = transitionTask(status, 'running', 'decision');
  const reason = refusal.allowed ? '' : refusal.reason;
  const decisionType: DecisionType = hold === 'paused' ? 'PAUSE' : 'BLOCK';
  return {
    outcome: {
      decision_type: decisionType,
      reason: `${reason} (policy decided ${outcome.decision_type}: ${outcome.reason})`,
      findings: outcome.findings,
      actions: [actions.writeAudit()],
      task: {},
    },
    policyDecided: outcome.decision_type,
  };
}
