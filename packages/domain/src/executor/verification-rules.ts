/**
 * The WriteGate's rules about verifications (docs/executor.md, "Verifications"): a plan may only name
 * verifications the policy declares, and a change to what any of them executes needs a person — else an agent
 * could rewrite `package.json`'s `test` script in one LOW-risk change set and have it run by the next.
 */
import { matchesAnyGlob } from '../glob.js';
import type { ChangePlan } from './change-set.js';
import { VERIFICATION_DEFINITION_FILES, type WriteGatePolicy } from './writegate-policy.js';

/** Every verification the plan asks for: its verification plan's, then its health checks'. */
export function verificationsNamedByPlan(plan: ChangePlan): string[] {
  return [
    ...(plan.verification_plan?.verifications ?? []),
    ...plan.health_checks.flatMap((check) => (check.type === 'verification' ? [check.verification] : [])),
  ];
}

/** Names the plan uses that the policy does not declare (each once, in order). */
export function unknownVerifications(plan: ChangePlan, policy: WriteGatePolicy): string[] {
  return [
    ...new Set(verificationsNamedByPlan(plan).filter((name) => !Object.hasOwn(policy.verifications, name))),
  ];
}

/**
 * Changed paths that decide what a verification of the policy runs: its definition files (`package.json`,
 * `Makefile`, test configs…) and its declared `inputs`. Every verification counts, not only those the plan
 * names: a later change set could name it. Nothing when the policy declares no verification.
 */
export function verificationInputsTouched(
  paths: readonly string[],
  policy: WriteGatePolicy,
): { paths: string[]; verifications: string[] } {
  const entries = Object.entries(policy.verifications);
  if (entries.length === 0) return { paths: [], verifications: [] };
  const touched = new Set<string>();
  const verifications = new Set<string>();
  for (const path of paths) {
    for (const [name, verification] of entries) {
      const globs = [...VERIFICATION_DEFINITION_FILES, ...verification.inputs];
      if (matchesAnyGlob(path, globs, { caseInsensitive: true })) {
        touched.add(path);
        verifications.add(name);
      }
    }
  }
  return { paths: [...touched], verifications: [...verifications] };
}
