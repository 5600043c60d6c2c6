import { z } from 'zod';

/**
 * What an API key may do. `admin` implies every other scope but `events:write` (see {@link hasScope}): an admin
 * key is a person's, and a person's key does not speak for an agent.
 */
export const SCOPES = [
  'events:write',
  'tasks:read',
  // Releasing a task's gates and unblocking it: a person's decision on what an agent did. Split from the
  // retired `tasks:write` so that no key both writes an agent's events and approves them.
  'tasks:approve',
  'triggers:read',
  'triggers:write',
  // Overriding the migration cutover gate (`?force=true`): held apart from triggers:write so the key that
  // writes triggers cannot also vouch for an unproven cutover.
  'triggers:approve',
  'lead:read',
  'lead:run',
  'changesets:write',
  'changesets:approve',
  // Stored policy versions: reading them, pushing drafts, and activating or rolling back (a different key
  // from the one that pushed: the person who writes a policy change does not also approve it).
  'policies:read',
  'policies:write',
  'policies:approve',
  // The tenant's notification channels (docs/notifications.md): create, change, delete, read them and their log.
  'notifications:write',
  'admin',
  // Operating the installation (Bull Board over every tenant's queues): a platform operator's key, bound to no
  // tenant. Never implied by a tenant's `admin` (see hasScope).
  'platform:operate',
] as const;

export const ScopeSchema = z.enum(SCOPES);
export type Scope = z.infer<typeof ScopeSchema>;

export function hasScope(granted: readonly Scope[], needed: Scope): boolean {
  if (granted.includes(needed)) return true;
  // `admin` approves, so it must not also act as an agent: it never implies the one scope agents act with.
  // Nor is a tenant's admin a platform operator: one tenant's key never sees the others'.
  return granted.includes('admin') && !AGENT_SCOPES.includes(needed) && !PLATFORM_SCOPES.includes(needed);
}

/** Scopes over the whole installation, held only by platform-operator keys (bound to no tenant). */
export const PLATFORM_SCOPES: readonly Scope[] = ['platform:operate'];

/** The scopes an agent acts with: a key that holds one of them must not approve what it did. */
export const AGENT_SCOPES: readonly Scope[] = ['events:write'];

/** The scopes that approve, release or override what an agent did: every `…:approve` scope, and `admin`. */
export const APPROVE_SCOPES: readonly Scope[] = SCOPES.filter(
  (scope) => scope.endsWith(':approve') || scope === 'admin',
);

/**
 * Scopes a key may no longer be created with, and why. Stored keys never hold them: the migration
 * `2026_12_03_0004_separation_of_duties` rewrote them.
 */
export const RETIRED_SCOPES: Readonly<Record<string, string>> = {
  'tasks:write':
    '"tasks:write" was retired: releasing gates and unblocking tasks now need "tasks:approve", which a key holding "events:write" cannot have',
};

/**
 * A tenant's separation-of-duties rule. `enforced` (every tenant's, by default): a key that writes an agent's
 * events holds no approving scope. `relaxed`: a platform operator allowed this tenant's keys to hold both (a
 * single-person sandbox, say); setting it either way is an audit row of the tenant's chain (docs/api.md,
 * "Separation of duties"). Anything else read from storage counts as `enforced`.
 */
export const SEPARATION_OF_DUTIES_RULES = ['enforced', 'relaxed'] as const;
export type SeparationOfDutiesRule = (typeof SEPARATION_OF_DUTIES_RULES)[number];

/**
 * Separation of duties: why a key may not be created with `scopes`, or undefined when it may. A key that
 * writes an agent's events (`events:write`) must not also release its gates, unblock it or approve its change
 * sets and trigger cutovers (`…:approve`, or `admin`), or an agent could approve its own work with its own key —
 * unless the tenant's rule is `relaxed`.
 */
export function scopeConflict(
  scopes: readonly Scope[],
  rule: SeparationOfDutiesRule = 'enforced',
): string | undefined {
  if (rule === 'relaxed') return undefined;
  const acting = AGENT_SCOPES.filter((scope) => scopes.includes(scope));
  const approving = APPROVE_SCOPES.filter((scope) => scopes.includes(scope));
  if (acting.length === 0 || approving.length === 0) return undefined;
  const quote = (list: readonly Scope[]) => list.map((scope) => `"${scope}"`).join(', ');
  return (
    `separation of duties: a key with ${quote(acting)} (an agent's key) cannot also hold ${quote(approving)}; ` +
    'create one key for the agent and another for the person who approves'
  );
}

/**
 * The scopes a stored key may use under its tenant's rule. A key that holds an agent's scope together with an
 * approving one (a row written around `insertApiKey`, restored from an old backup, or created while the tenant
 * was `relaxed` and the rule is `enforced` again) keeps the agent's scope and loses the approving ones: the rule
 * holds at every request, not only where keys are created.
 */
export function effectiveScopes(
  scopes: readonly Scope[],
  rule: SeparationOfDutiesRule = 'enforced',
): Scope[] {
  if (scopeConflict(scopes, rule) === undefined) return [...scopes];
  return scopes.filter((scope) => !APPROVE_SCOPES.includes(scope));
}

/** A stored rule as the code uses it: only the exact word `relaxed` relaxes (fail closed). */
export function separationOfDutiesRule(stored: string | null | undefined): SeparationOfDutiesRule {
  return stored === 'relaxed' ? 'relaxed' : 'enforced';
}

/** A tenant id: short, URL- and log-safe. */
export const TenantIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
    'must start with a letter or digit and use only letters, digits, "_", "." and "-"',
  );
