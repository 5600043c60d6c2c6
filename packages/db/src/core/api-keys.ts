import { PLATFORM_SCOPES, scopeConflict, ValidationError, type Scope } from '@warden/domain';
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
  'key_id',
  'tenant_id',
  'name',
  'owner',
  'key_prefix',
  'scopes',
  'created_at',
  'revoked_at',
] as const;

/**
 * Stores a new key. Refuses (ValidationError naming `scopes`) a key that would break separation of duties,
 * whoever asks — the CLI checks first, this is the last line — and one without an owner.
 */
export async function insertApiKey(db: QueryExecutor, key: NewApiKey): Promise<ApiKeyRecord> {
  const conflict = scopeConflict(key.scopes);
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
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
  return toRecord(row);
}

/** The live (not revoked) key with this hash, or undefined. */
export async function findActiveApiKeyByHash(
  db: QueryExecutor,
  keyHash: string,
): Promise<ApiKeyRecord | undefined> {
  const row = await db
    .selectFrom('api_keys')
    .select(COLUMNS)
    .where('key_hash', '=', keyHash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row ? toRecord(row) : undefined;
}

/** The live (not revoked) key with this id, or undefined: how a console session re-checks its key on each request. */
export async function findActiveApiKeyById(
  db: QueryExecutor,
  keyId: string,
): Promise<ApiKeyRecord | undefined> {
  const row = await db
    .selectFrom('api_keys')
    .select(COLUMNS)
    .where('key_id', '=', keyId)
    .where('revoked_at', 'is', null)
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
  let query = db.selectFrom('api_keys').select(COLUMNS).orderBy('created_at', 'desc').orderBy('key_id');
  if (options.tenantId !== undefined) query = query.where('tenant_id', '=', options.tenantId);
  if (!options.includeRevoked) query = query.where('revoked_at', 'is', null);
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
  };
}
