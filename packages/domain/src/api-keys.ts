import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ValidationError } from './errors.js';
import {
  PLATFORM_SCOPES,
  RETIRED_SCOPES,
  SCOPES,
  ScopeSchema,
  scopeConflict,
  type Scope,
  type SeparationOfDutiesRule,
} from './scopes.js';

/**
 * API keys look like `wdn_<24 random base62-ish chars>` and are stored only as their SHA-256. A fast hash is
 * right here (unlike passwords): keys carry 144 bits of randomness, so there is nothing to brute-force.
 */
export const API_KEY_PREFIX = 'wdn_';

export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBytes(18).toString('base64url');
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The first characters shown in listings so a person can tell keys apart without seeing them. */
export function displayPrefix(key: string): string {
  return key.slice(0, API_KEY_PREFIX.length + 6);
}

/**
 * Who a key belongs to: the person or system it speaks for (`alice@example.com`, `billing-agent`). Every
 * release, unblock, approval and rejection made with the key records it next to the key id.
 */
export const KeyOwnerSchema = z
  .string()
  .trim()
  .min(1, 'name the person or system the key belongs to')
  .max(200)
  .refine(
    // Owners are shown in audit trails and terminals: no control characters (a NUL cannot even be stored).
    (value) => [...value].every((char) => char.charCodeAt(0) >= 0x20 && char.charCodeAt(0) !== 0x7f),
    'must not contain control characters',
  );

/**
 * The scopes a new key asks for, checked: none unknown or retired, at least one, and no separation-of-duties
 * conflict under `rule` ({@link scopeConflict}; `enforced` unless the tenant's rule is known to be relaxed).
 * Throws a ValidationError naming `scopes`; duplicates are dropped.
 */
export function parseNewKeyScopes(
  requested: readonly string[],
  rule: SeparationOfDutiesRule = 'enforced',
): Scope[] {
  const fail = (message: string): never => {
    throw new ValidationError(message, [{ path: 'scopes', message }]);
  };
  const unique = [...new Set(requested.map((scope) => scope.trim()).filter((scope) => scope !== ''))];
  if (unique.length === 0) fail(`scopes is empty; valid scopes: ${SCOPES.join(', ')}`);
  const retired = unique.filter((scope) => Object.hasOwn(RETIRED_SCOPES, scope));
  if (retired.length > 0) fail(retired.map((scope) => RETIRED_SCOPES[scope]).join('; '));
  const unknown = unique.filter((scope) => !ScopeSchema.safeParse(scope).success);
  if (unknown.length > 0)
    fail(
      `unknown scope ${unknown.map((scope) => `"${scope}"`).join(', ')}; valid scopes: ${SCOPES.join(', ')}`,
    );
  const scopes = unique as Scope[];
  const platform = scopes.filter((scope) => PLATFORM_SCOPES.includes(scope));
  if (platform.length > 0)
    fail(
      `${platform.map((scope) => `"${scope}"`).join(', ')} is for a platform operator's key, bound to no tenant (warden keys create-operator); a tenant's key cannot hold it`,
    );
  const conflict = scopeConflict(scopes, rule);
  if (conflict) fail(conflict);
  return scopes;
}
