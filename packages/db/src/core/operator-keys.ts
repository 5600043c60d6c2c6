/**
 * Platform operators' keys (migration 2026_12_04_0006): bound to no tenant, holding only platform scopes
 * (`platform:operate`: Bull Board over every tenant's queues). A separate table from `api_keys`, so no tenant's
 * key — its admin key included — can ever be one. Only the hash of a key is stored.
 */
import { PLATFORM_SCOPES, ValidationError, type Scope } from '@warden/domain';
import type { QueryExecutor } from '../database.js';

export interface OperatorKeyRecord {
  keyId: string;
  name: string;
  /** The person the key belongs to. */
  owner: string;
  keyPrefix: string;
  scopes: Scope[];
  createdAt: Date;
}

export interface NewOperatorKey {
  name: string;
  owner: string;
  keyHash: string;
  keyPrefix: string;
  /** @defaultValue `['platform:operate']` */
  scopes?: readonly Scope[];
}

const COLUMNS = ['key_id', 'name', 'owner', 'key_prefix', 'scopes', 'created_at'] as const;

function toRecord(row: {
  key_id: string;
  name: string;
  owner: string;
  key_prefix: string;
  scopes: string[];
  created_at: Date;
}): OperatorKeyRecord {
  return {
    keyId: row.key_id,
    name: row.name,
    owner: row.owner,
    keyPrefix: row.key_prefix,
    scopes: row.scopes as Scope[],
    createdAt: row.created_at,
  };
}

/** Stores an operator key; refuses (ValidationError) a tenant scope or an empty owner. */
export async function insertOperatorKey(db: QueryExecutor, key: NewOperatorKey): Promise<OperatorKeyRecord> {
  const scopes = [...new Set(key.scopes ?? PLATFORM_SCOPES)];
  const tenantScopes = scopes.filter((scope) => !PLATFORM_SCOPES.includes(scope));
  if (scopes.length === 0 || tenantScopes.length > 0) {
    const message = `an operator key holds only ${PLATFORM_SCOPES.join(', ')}; ${tenantScopes.join(', ') || 'none given'} belong on a tenant's key`;
    throw new ValidationError(message, [{ path: 'scopes', message }]);
  }
  if (key.owner.trim() === '')
    throw new ValidationError('a key needs an owner', [{ path: 'owner', message: 'must not be empty' }]);
  const row = await db
    .insertInto('operator_keys')
    .values({
      name: key.name,
      owner: key.owner,
      key_hash: key.keyHash,
      key_prefix: key.keyPrefix,
      scopes,
    })
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
  return toRecord(row);
}

/** The live (not revoked) operator key with this hash, or undefined. */
export async function findActiveOperatorKeyByHash(
  db: QueryExecutor,
  keyHash: string,
): Promise<OperatorKeyRecord | undefined> {
  const row = await db
    .selectFrom('operator_keys')
    .select(COLUMNS)
    .where('key_hash', '=', keyHash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row ? toRecord(row) : undefined;
}

export async function revokeOperatorKey(db: QueryExecutor, keyId: string): Promise<boolean> {
  const result = await db
    .updateTable('operator_keys')
    .set({ revoked_at: new Date() })
    .where('key_id', '=', keyId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}
