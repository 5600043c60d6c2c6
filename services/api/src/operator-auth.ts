/**
 * Authentication of platform operators (Bull Board): a key from `operator_keys` — bound to no tenant, holding
 * `platform:operate` — as HTTP Basic password (any user) or a Bearer token. A tenant's key, its admin key
 * included, is refused with a 403 saying what is needed: one tenant's key must never see every tenant's jobs.
 * No cache: a revoked operator key stops working at once (Bull Board is not a hot path).
 */
import type { RequestHandler } from 'express';
import { findActiveApiKeyByHash, findActiveOperatorKeyByHash, type Db } from '@warden/db';
import { ForbiddenError, UnauthorizedError, hashApiKey } from '@warden/domain';
import { readKey } from './auth.js';

/** Who operates: set on `res.locals.operator`. */
export interface OperatorContext {
  keyId: string;
  owner: string;
}

export function authenticateOperator(options: { db: Db; realm: string }): RequestHandler {
  const challenge = `Basic realm="${options.realm}"`;
  return async (req, res, next) => {
    const key = readKey(req.headers.authorization, true);
    if (!key) {
      res.setHeader('www-authenticate', challenge);
      throw new UnauthorizedError(
        "missing credentials: a platform operator's key as the HTTP Basic password (any user), or as a Bearer token",
      );
    }
    const hash = hashApiKey(key);
    const operator = await findActiveOperatorKeyByHash(options.db, hash);
    if (operator?.scopes.includes('platform:operate')) {
      res.locals.operator = { keyId: operator.keyId, owner: operator.owner } satisfies OperatorContext;
      return next();
    }
    if (await findActiveApiKeyByHash(options.db, hash))
      throw new ForbiddenError(
        'this is a tenant\'s API key; Bull Board spans every tenant and needs a platform operator\'s key (scope "platform:operate", bound to no tenant: `warden keys create-operator`)',
      );
    res.setHeader('www-authenticate', challenge);
    throw new UnauthorizedError('invalid or revoked key');
  };
}
