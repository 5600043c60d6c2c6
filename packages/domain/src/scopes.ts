import { z } from 'zod';

/** What an API key may do. `admin` implies every other scope. */
export const SCOPES = [
  'events:write',
  'tasks:read',
  'tasks:write',
  'triggers:read',
  'triggers:write',
  'lead:read',
  'lead:run',
  'changesets:write',
  'changesets:approve',
  'admin',
] as const;

export const ScopeSchema = z.enum(SCOPES);
export type Scope = z.infer<typeof ScopeSchema>;

export function hasScope(granted: readonly Scope[], needed: Scope): boolean {
  return granted.includes('admin') || granted.includes(needed);
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
