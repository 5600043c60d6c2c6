import {
  PLATFORM_SCOPES,
  scopeConflict,
  separationOfDutiesRule,
  ValidationError,
  type Scope,
  type SeparationOfDutiesRule,
} from '@warden/domain';
import type { QueryExecutor } from '../database.js';

export interface ApiKeyRecord {
  keyId: string;
  tenantId: string;
  name: string;
  /** The person or system the key belongs to. */
  owner: string;
  keyPrefix: string;
  scopes: Scope[];
  createdAt: Date;
  revokedAt: Date | null;
  /** The tenant's separation-of-duties rule, read with the key: what {@link effectiveScopes} applies. */
  separationOfDuties: SeparationOfDutiesRule;
}

export interface NewApiKey {
  tenantId: string;
  name: string;
  /** The person or system the key belongs to; required, recorded with every approval made with the key. */
  owner: string;
  keyHash: string;
  keyPrefix: string;
  scopes: readonly Scope[];
}

const COLUMNS = [
  'api_keys.key_id',
  'api_keys.tenant_id',
  'api_keys.name',
  'api_keys.owner',
  'api_keys.key_prefix',
  'api_keys.scopes',
  'api_keys.created_at',
  'api_keys.revoked_at',
  'tenants.separation_of_duties',
] as const;

/** Keys with their tenant's rule; a key whose tenant row is missing reads as `enforced` (toRecord). */
function selectKeys(db: QueryExecutor) {
  return db
    .selectFrom('api_keys')
    .leftJoin('tenants', 'tenants.tenant_id', 'api_keys.tenant_id')
    .select(COLUMNS);
}

/**
 * Stores a new key. Refuses (ValidationError naming `scopes`) a key that would break separation of duties,
 * whoever asks — the CLI checks first, this is the last line — and one without an owner.
 */
export async function insertApiKey(db: QueryExecutor, key: NewApiKey): Promise<ApiKeyRecord> {
  const tenant = await db
    .selectFrom('tenants')
    .select('separation_of_duties')
    .where('tenant_id', '=', key.tenantId)
    .executeTakeFirst();
  const rule = separationOfDutiesRule(tenant?.separation_of_duties);
  const conflict = scopeConflict(key.scopes, rule);
  if (conflict) throw new ValidationError(conflict, [{ path: 'scopes', message: conflict }]);
  const platform = key.scopes.filter((scope) => PLATFORM_SCOPES.includes(scope));
  if (platform.length > 0) {
    const message = `${platform.join(', ')} belongs on a platform operator's key (insertOperatorKey), never on a tenant's`;
    throw new ValidationError(message, [{ path: 'scopes', message }]);
  }
  if (key.owner.trim() === '')
    throw new ValidationError('a key needs an owner', [{ path: 'owner', message: 'must not be empty' }]);
  const row = await db
    .insertInto('api_keys')
    .values({
      tenant_id: key.tenantId,
      name: key.name,
      owner: key.owner,
      key_hash: key.keyHash,
      key_prefix: key.keyPrefix,
      scopes: [...key.scopes],
    })
    .returning(['key_id', 'tenant_id', 'name', 'owner', 'key_prefix', 'scopes', 'created_at', 'revoked_at'])
    .executeTakeFirstOrThrow();
  return toRecord({ ...row, separation_of_duties: rule });
}

/** The live (not revoked) key with this hash, or undefined. */
export async function findActiveApiKeyByHash(
  db: QueryExecutor,
  keyHash: string,
): Promise<ApiKeyRecord | undefined> {
  const row = await selectKeys(db)
    .where('api_keys.key_hash', '=', keyHash)
    .where('api_keys.revoked_at', 'is', null)
    .executeTakeFirst();
  return row ? toRecord(row) : undefined;
}

/** The live (not revoked) key with this id, or undefined: how a console session re-checks its key on each request. */
export async function findActiveApiKeyById(
  db: QueryExecutor,
  keyId: string,
): Promise<ApiKeyRecord | undefined> {
  const row = await selectKeys(db)
    .where('api_keys.key_id', '=', keyId)
    .where('api_keys.revoked_at', 'is', null)
    .executeTakeFirst();
  return row ? toRecord(row) : undefined;
}

export async function revokeApiKey(db: QueryExecutor, keyId: string): Promise<boolean> {
  const result = await db
    .updateTable('api_keys')
    .set({ revoked_at: new Date() })
    .where('key_id', '=', keyId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/**
 * Keys for `warden keys list`: one tenant's or every tenant's, newest first; revoked ones only when asked. Never
 * a hash.
 */
export async function listApiKeys(
  db: QueryExecutor,
  options: { tenantId?: string; includeRevoked?: boolean } = {},
): Promise<ApiKeyRecord[]> {
  let query = selectKeys(db).orderBy('api_keys.created_at', 'desc').orderBy('api_keys.key_id');
  if (options.tenantId !== undefined) query = query.where('api_keys.tenant_id', '=', options.tenantId);
  if (!options.includeRevoked) query = query.where('api_keys.revoked_at', 'is', null);
  return (await query.execute()).map(toRecord);
}

function toRecord(row: {
  key_id: string;
  tenant_id: string;
  name: string;
  owner: string;
  key_prefix: string;
  scopes: string[];
  created_at: Date;
  revoked_at: Date | null;
  separation_of_duties: string | null;
}): ApiKeyRecord {
  return {
    keyId: row.key_id,
    tenantId: row.tenant_id,
    name: row.name,
    owner: row.owner,
    keyPrefix: row.key_prefix,
    scopes: row.scopes as Scope[],
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
    separationOfDuties: separationOfDutiesRule(row.separation_of_duties),
  };
}
