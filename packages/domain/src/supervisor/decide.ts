import type { AuditLevel } from '../tasks.js';
import { deterministicId } from '../canonical-json.js';
import type { Decision, DecisionType } from '../decisions.js';
import type { EnforcementMode } from '../policy-file.js';
import { actions, type PolicyInput, type PolicyOutcome } from './policy.js';
import type { PolicyRegistry } from './policy-registry.js';

/** Audit event type and level of each decision type (SPEC §2). */
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
  audits: Array<{ event_type: string; level: AuditLevel; decision_id: string | null; payload: Record<string, unknown> }>;
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
  const own = (table: Record<string, EnforcementMode>, key: string) => (Object.hasOwn(table, key) ? table[key] : undefined);
  return own(enforcement.tenants, input.event.tenant_id) ?? own(enforcement.event_types, input.event.event_type) ?? enforcement.default;
}

/**
 * Decides on one event: routes it to its policy, evaluates it, applies monitor mode, and fails closed — a
 * policy that throws or runs past `policy_timeout_ms` (measured with `now`, since a pure synchronous policy
 * cannot be interrupted) gives REQUIRE_REVIEW with a pause gate and a SUPERVISOR_ERROR audit, never ALLOW.
 */
export function decide(input: PolicyInput, registry: PolicyRegistry, now: () => number = () => performance.now()): DecisionPlan {
  const { event, config } = input;
  const policy = registry.route(event.event_type);
  const decisionId = decisionIdFor(event.tenant_id, event.event_id);
  const enforcement = enforcementFor(input);

  let outcome: PolicyOutcome;
  let failure: { error: string; elapsed_ms: number } | undefined;
  const started = now();
  try {
    outcome = policy.evaluate(input);
    const elapsed = now() - started;
    if (elapsed > config.thresholds.policy_timeout_ms) {
      failure = { error: `policy ${policy.name} ran ${Math.round(elapsed)} ms, over its ${config.thresholds.policy_timeout_ms} ms budget`, elapsed_ms: elapsed };
    }
  } catch (error) {
    failure = { error: `policy ${policy.name} threw: ${error instanceof Error ? error.message : String(error)}`, elapsed_ms: now() - started };
    outcome = { decision_type: 'REQUIRE_REVIEW', reason: '', findings: [], actions: [] };
  }

  if (failure) {
    const reason = `fail closed: ${failure.error}`;
    outcome = { decision_type: 'REQUIRE_REVIEW', reason, findings: [], actions: [actions.pauseGate(reason, REVIEW_CHECKPOINT), actions.writeAudit()], task: { status: 'paused' } };
  }

  let wouldHave: DecisionType | undefined;
  if (!failure && enforcement === 'monitor' && outcome.decision_type !== 'ALLOW') {
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
    ? { gate_id: `gate-${decisionId}`, checkpoint: String(pause.params.checkpoint ?? 'open_plan'), reason: decision.reason }
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
      payload: { error: failure.error, elapsed_ms: Math.round(failure.elapsed_ms), policy: policy.name, event_id: event.event_id, event_type: event.event_type },
    });
  }
  return { decision, task: outcome.task ?? {}, ...(gate ? { gate } : {}), audits, enforcement };
}
