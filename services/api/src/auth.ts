import type { RequestHandler, Response } from 'express';
import { findActiveApiKeyByHash, type ApiKeyRecord, type Db } from '@warden/db';
import {
  AGENT_SCOPES,
  ForbiddenError,
  UnauthorizedError,
  effectiveScopes,
  hasScope,
  hashApiKey,
  type Scope,
} from '@warden/domain';

/** Who is calling: set on `res.locals.auth` by {@link authenticate}. */
export interface AuthContext {
  keyId: string;
  tenantId: string;
  /** The person or system the key belongs to: recorded with every approval made with it. */
  owner: string;
  scopes: Scope[];
}

/**
 * Who did a person's act, for audit rows and change-set records: the key id (as `api_key:<id>`, what the
 * `released_by` / `approved_by` style fields have always held) and, next to it, the key's owner.
 */
export function actorOf(auth: AuthContext): { by: string; owner: string } {
  return { by: `api_key:${auth.keyId}`, owner: auth.owner };
}

export function authOf(res: Response): AuthContext {
  const auth = res.locals.auth as AuthContext | undefined;
  if (!auth) throw new UnauthorizedError('not authenticated');
  return auth;
}

export interface AuthenticateOptions {
  db: Db;
  /** How long a verified key is trusted without a lookup. @defaultValue `10000` */
  cacheTtlMs?: number;
  /** Also accept HTTP Basic with the key as password (for browsers: Bull Board). @defaultValue `false` */
  allowBasic?: boolean;
  /** `realm` of the Basic challenge when `allowBasic`. @defaultValue `Warden` */
  realm?: string;
}

const MAX_CACHED_KEYS = 10_000;

/**
 * Verifies `Authorization: Bearer <api key>` against the hashed keys in Postgres. Verified keys are cached
 * for a few seconds: ingest is the hot path and a lookup per request would halve it. A revoked key
 * therefore stops working within `cacheTtlMs`.
 */
export function authenticate(options: AuthenticateOptions): RequestHandler {
  const ttl = options.cacheTtlMs ?? 10_000;
  const cache = new Map<string, { record: ApiKeyRecord; expiresAt: number }>();
  return async (req, res, next) => {
    const key = readKey(req.headers.authorization, options.allowBasic ?? false);
    if (!key) {
      if (options.allowBasic) res.setHeader('www-authenticate', `Basic realm="${options.realm ?? 'Warden'}"`);
      throw new UnauthorizedError(
        'missing or malformed Authorization header; send "Authorization: Bearer <api key>"',
      );
    }
    const hash = hashApiKey(key);
    const now = Date.now();
    let record = cache.get(hash);
    if (!record || record.expiresAt <= now) {
      const found = await findActiveApiKeyByHash(options.db, hash);
      if (!found) {
        cache.delete(hash);
        if (options.allowBasic)
          res.setHeader('www-authenticate', `Basic realm="${options.realm ?? 'Warden'}"`);
        throw new UnauthorizedError('invalid or revoked API key');
      }
      if (cache.size >= MAX_CACHED_KEYS) cache.clear();
      record = { record: found, expiresAt: now + ttl };
      if (ttl > 0) cache.set(hash, record);
    }
    res.locals.auth = {
      keyId: record.record.keyId,
      tenantId: record.record.tenantId,
      owner: record.record.owner,
      // The separation-of-duties rule again, at every request, under the tenant's rule as read with the key: a key
      // row written around insertApiKey, or kept from a relaxed period, cannot approve.
      scopes: effectiveScopes(record.record.scopes, record.record.separationOfDuties),
    } satisfies AuthContext;
    next();
  };
}

/** The key of an `Authorization` header: a Bearer token or, with `allowBasic`, the Basic password. */
export function readKey(header: string | undefined, allowBasic: boolean): string | undefined {
  if (!header) return undefined;
  const [scheme, value] = header.split(' ', 2);
  if (!value) return undefined;
  if (scheme?.toLowerCase() === 'bearer') return value.trim() || undefined;
  if (allowBasic && scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon >= 0 ? decoded.slice(colon + 1) || undefined : undefined;
  }
  return undefined;
}

/**
 * 403 unless the caller's key has one of `scopes` (or `admin`). Every scope check of the API goes through here,
 * so the refusal reads the same everywhere: `this API key lacks the "a" or "b" scope`.
 */
export function assertAnyScope(auth: AuthContext, scopes: readonly Scope[]): void {
  if (scopes.some((scope) => hasScope(auth.scopes, scope))) return;
  // An admin key that may not write events would otherwise look like a bug: say why.
  const why =
    auth.scopes.includes('admin') && scopes.every((scope) => AGENT_SCOPES.includes(scope))
      ? " (admin keys are for people and never write an agent's events: separation of duties)"
      : '';
  throw new ForbiddenError(`this API key lacks the ${scopes.map((s) => `"${s}"`).join(' or ')} scope${why}`);
}

/** {@link assertAnyScope} as middleware, for what is mounted outside the declared routes (Bull Board). */
export function requireScope(...scopes: Scope[]): RequestHandler {
  return (_req, res, next) => {
    assertAnyScope(authOf(res), scopes);
    next();
  };
}
