import { actions, type Policy } from './policy.js';
import { taskActionProposedPolicy } from './task-action-proposed-policy.js';
import { taskCreatedPolicy } from './task-created-policy.js';
import { taskFailedPolicy } from './task-failed-policy.js';
import { taskStateChangedPolicy } from './task-state-changed-policy.js';
import { taskStepCompletedPolicy } from './task-step-completed-policy.js';

/** Allows and audits: for any event type without a policy of its own. */
export const defaultPolicy: Policy = {
  name: 'default_allow_audit',
  version: '1',
  evaluate: () => ({
    decision_type: 'ALLOW',
    reason: 'no policy for this event type: allowed and audited',
    findings: [],
    actions: [actions.writeAudit()],
  }),
};

/**
 * Policies by event type. Routing: the exact type, then the most specific wildcard (`TASK_*`, `*_COMPLETED`;
 * the longest pattern wins, ties by registration order), then the default policy.
 */
export class PolicyRegistry {
  private readonly exact = new Map<string, Policy>();
  private readonly wildcards: Array<{ pattern: string; regex: RegExp; policy: Policy }> = [];

  constructor(private readonly fallback: Policy = defaultPolicy) {}

  register(pattern: string, policy: Policy): this {
    if (pattern.includes('*')) {
      const regex = new RegExp(
        `^${pattern
          .split('*')
          .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
          .join('.*')}$`,
      );
      this.wildcards.push({ pattern, regex, policy });
    } else {
      this.exact.set(pattern, policy);
    }
    return this;
  }

  route(eventType: string): Policy {
    const exact = this.exact.get(eventType);
    if (exact) return exact;
    let best: { pattern: string; policy: Policy } | undefined;
    for (const candidate of this.wildcards) {
      if (candidate.regex.test(eventType) && (!best || candidate.pattern.length > best.pattern.length))
        best = candidate;
    }
    return best?.policy ?? this.fallback;
  }
}

/** The built-in policies, one per event type (docs/supervisor.md, "Policies"). */
export function builtInPolicies(): PolicyRegistry {
  return new PolicyRegistry()
    .register('TASK_CREATED', taskCreatedPolicy)
    .register('TASK_STEP_COMPLETED', taskStepCompletedPolicy)
    .register('TASK_FAILED', taskFailedPolicy)
    .register('TASK_STATE_CHANGED', taskStateChangedPolicy)
    .register('TASK_ACTION_PROPOSED', taskActionProposedPolicy);
}
