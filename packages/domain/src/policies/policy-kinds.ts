/**
 * The policies Warden stores as versions per tenant, and how a pushed source of each kind is validated: the
 * same schemas the services load their bootstrap files with (`infra/policies/`), so a stored version is
 * exactly as valid as a file would be.
 */
import { z } from 'zod';
import { LeadRulesFileSchema } from '../lead/lead-rules-file.js';
import { WriteGatePolicySchema } from '../executor/writegate-policy.js';
import { parsePolicyYaml, SupervisorPolicyFileSchema } from '../policy-file.js';

export const POLICY_KINDS = ['supervisor', 'writegate', 'lead-rules'] as const;
export const PolicyKindSchema = z.enum(POLICY_KINDS);
export type PolicyKind = z.infer<typeof PolicyKindSchema>;

/** The schema each kind of policy source is validated with. */
export const POLICY_SCHEMAS = {
  supervisor: SupervisorPolicyFileSchema,
  writegate: WriteGatePolicySchema,
  'lead-rules': LeadRulesFileSchema,
} as const satisfies Record<PolicyKind, z.ZodType>;

export type PolicyDocumentOf<K extends PolicyKind> = z.output<(typeof POLICY_SCHEMAS)[K]>;

/** The bootstrap file of each kind, relative to the repository root (the version a tenant starts from). */
export const BOOTSTRAP_POLICY_FILES: Readonly<Record<PolicyKind, string>> = {
  supervisor: 'infra/policies/supervisor.yaml',
  writegate: 'infra/policies/writegate.yaml',
  'lead-rules': 'infra/policies/lead-rules.yaml',
};

/** Largest policy source accepted, in characters: far above any real policy, low enough to diff cheaply. */
export const MAX_POLICY_SOURCE_CHARS = 256 * 1024;

/**
 * Parses and validates a policy source of `kind`; a YAML error or a schema violation is a ValidationError
 * naming `where` and the line or field.
 */
export function parsePolicySource<K extends PolicyKind>(
  kind: K,
  source: string,
  where: string,
): PolicyDocumentOf<K> {
  return parsePolicyYaml(source, POLICY_SCHEMAS[kind], where) as PolicyDocumentOf<K>;
}

/**
 * The version string decisions record for a stored policy: the file's own `version`, then `@v` and the
 * stored version number, so two pushes of a file that forgot to bump `version` are still told apart.
 */
export function storedPolicyVersionLabel(fileVersion: string, storedVersion: number): string {
  return `${fileVersion}@v${storedVersion}`;
}
