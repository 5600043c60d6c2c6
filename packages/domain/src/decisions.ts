import { z } from 'zod';

export const DecisionTypeSchema = z.enum(['ALLOW', 'PAUSE', 'BLOCK', 'RETRY', 'REQUIRE_REVIEW']);
export type DecisionType = z.infer<typeof DecisionTypeSchema>;

export const FindingKindSchema = z.enum(['REDLINE', 'RISK', 'CONFLICT', 'CONSTRAINT', 'FAILURE']);
export type FindingKind = z.infer<typeof FindingKindSchema>;

export const SeveritySchema = z.enum(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']);
export type Severity = z.infer<typeof SeveritySchema>;

const SEVERITY_RANK: Record<Severity, number> = { LOW: 1, MEDIUM: 2, HIGH: 3, CRITICAL: 4 };

/** True when `severity` is at least `floor` (`HIGH` is at least `MEDIUM`). */
export function severityAtLeast(severity: Severity, floor: Severity): boolean {
  return SEVERITY_RANK[severity] >= SEVERITY_RANK[floor];
}

/**
 * One thing a policy noticed. `code` is a stable machine code (`REDLINE_FORBIDDEN_COMMAND`) and `kind` its
 * family: the lead miner groups by both, so every finding must carry them.
 */
export const FindingSchema = z.object({
  finding_id: z.string().min(1),
  code: z.string().regex(/^[A-Z][A-Z0-9_]*$/),
  kind: FindingKindSchema,
  severity: SeveritySchema,
  description: z.string(),
  evidence: z.array(z.unknown()).default([]),
});
export type Finding = z.infer<typeof FindingSchema>;

export const ActionTypeSchema = z.enum([
  'pause_gate',
  'mark_blocked',
  'mark_verifying',
  'write_audit',
  'noop',
]);
export type ActionType = z.infer<typeof ActionTypeSchema>;

export const ActionSchema = z.object({
  action_type: ActionTypeSchema,
  target: z.string(),
  params: z.record(z.string(), z.unknown()).default({}),
});
export type Action = z.infer<typeof ActionSchema>;

export const DecisionSchema = z.object({
  decision_id: z.string().min(1),
  decision_type: DecisionTypeSchema,
  reason: z.string(),
  findings: z.array(FindingSchema),
  actions: z.array(ActionSchema),
  policy: z.string(),
  policy_version: z.string(),
  /** In monitor mode the recorded decision is ALLOW and this says what enforcement would have decided. */
  would_have: DecisionTypeSchema.optional(),
});
export type Decision = z.infer<typeof DecisionSchema>;
