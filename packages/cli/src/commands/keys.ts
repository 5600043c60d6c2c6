import type { Command } from 'commander';
import { z } from 'zod';
import { assertMigrationsCurrent, ensureTenant, insertApiKey, revokeApiKey } from '@warden/db';
import {
  displayPrefix,
  generateApiKey,
  hashApiKey,
  KeyOwnerSchema,
  parseNewKeyScopes,
  SCOPES,
  TenantIdSchema,
  ValidationError,
  type Scope,
} from '@warden/domain';
import { loadConfig, type CliEnvironment } from '../config.js';
import { CommandFailedError } from '../errors.js';
import { writeJson, type CliIo } from '../output.js';
import { closePostgres, connectPostgres } from '../postgres.js';

/** Parses one flag or argument with `schema`; a ValidationError (exit 2) quotes the value and says why. */
function parseArgument<S extends z.ZodType>(schema: S, value: string, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new ValidationError(
    `invalid ${what} "${value}": ${result.error.issues.map((issue) => issue.message).join('; ')}`,
  );
}

const KeyIdSchema = z.uuid('must be a key id (a UUID, as printed by `keys create`)');

/**
 * Splits `events:write, tasks:read` into scopes. Throws a ValidationError (exit 2) naming every unknown or
 * retired scope (listing the valid ones), when the list is empty, or when the scopes break separation of
 * duties (an agent's `events:write` with an approving scope or `admin`). Duplicates are dropped.
 */
export function parseScopes(text: string): Scope[] {
  return parseNewKeyScopes(text.split(','));
}

export interface CreateApiKeyOptions {
  /** Connection string of Warden's database. */
  databaseUrl: string;
  /** The tenant the key acts for; created when it does not exist yet. */
  tenantId: string;
  scopes: readonly Scope[];
  /** The person or system the key belongs to (`alice@example.com`, `billing-agent`); recorded with every approval. */
  owner: string;
  /** A label shown in listings. @defaultValue `created by warden keys create on <today's date>` */
  name?: string;
}

export interface CreatedApiKey {
  /** The raw key. It exists only in this object: the database keeps its hash. */
  key: string;
  keyId: string;
  tenantId: string;
  scopes: Scope[];
  name: string;
  owner: string;
  tenantCreated: boolean;
}

/**
 * Creates a key for a tenant (and the tenant if it is new) in one transaction, storing only the key's
 * SHA-256 and a short display prefix. Inputs are validated before Postgres is touched.
 */
export async function createApiKey(options: CreateApiKeyOptions): Promise<CreatedApiKey> {
  const tenantId = parseArgument(TenantIdSchema, options.tenantId, 'tenant id');
  const scopes = parseScopes(options.scopes.join(','));
  const owner = parseArgument(KeyOwnerSchema, options.owner, 'owner');
  const name = options.name ?? `created by warden keys create on ${new Date().toISOString().slice(0, 10)}`;
  const key = generateApiKey();
  const db = await connectPostgres(options.databaseUrl);
  try {
    await assertMigrationsCurrent(db);
    return await db.transaction().execute(async (trx) => {
      const tenantCreated = await ensureTenant(trx, tenantId);
      const record = await insertApiKey(trx, {
        tenantId,
        name,
        owner,
        keyHash: hashApiKey(key),
        keyPrefix: displayPrefix(key),
        scopes,
      });
      return {
        key,
        keyId: record.keyId,
        tenantId,
        scopes: record.scopes,
        name: record.name,
        owner: record.owner,
        tenantCreated,
      };
    });
  } finally {
    await closePostgres(db);
  }
}

/** Revokes a live key. Returns false when no live key has this id (unknown, or already revoked). */
export async function revokeApiKeyById(databaseUrl: string, keyId: string): Promise<boolean> {
  const id = parseArgument(KeyIdSchema, keyId, 'KEY_ID');
  const db = await connectPostgres(databaseUrl);
  try {
    await assertMigrationsCurrent(db);
    return await revokeApiKey(db, id);
  } finally {
    await closePostgres(db);
  }
}

export function registerKeysCommand(program: Command, environment: CliEnvironment, io: CliIo): void {
  const keys = program.command('keys').description('create and revoke API keys');

  keys
    .command('create')
    .description('create an API key for a tenant; the key is printed once and never stored')
    .requiredOption('--tenant <tenant>', 'tenant id (created when it does not exist)')
    .requiredOption(
      '--scopes <scopes>',
      `comma-separated scopes: ${SCOPES.join(', ')}; "events:write" (an agent's) excludes "admin" and every ":approve" scope`,
    )
    .requiredOption(
      '--owner <owner>',
      'the person or system the key belongs to; recorded with every release, unblock and approval',
    )
    .option('--name <name>', 'label shown in listings')
    .option('--json', 'print { key, key_id, tenant_id, scopes, owner } as JSON')
    .action(
      async (flags: { tenant: string; scopes: string; owner: string; name?: string; json?: boolean }) => {
        // Validate the flags before reading the configuration so bad input is reported as such.
        const tenantId = parseArgument(TenantIdSchema, flags.tenant, '--tenant');
        const scopes = parseScopes(flags.scopes);
        const owner = parseArgument(KeyOwnerSchema, flags.owner, '--owner');
        const config = loadConfig(environment);
        const created = await createApiKey({
          databaseUrl: config.DATABASE_URL,
          tenantId,
          scopes,
          owner,
          ...(flags.name === undefined ? {} : { name: flags.name }),
        });
        if (flags.json) {
          writeJson(io, {
            key: created.key,
            key_id: created.keyId,
            tenant_id: created.tenantId,
            scopes: created.scopes,
            owner: created.owner,
          });
          return;
        }
        if (created.tenantCreated) io.out(`created tenant ${created.tenantId}\n`);
        io.out(
          `created key ${created.keyId} for tenant ${created.tenantId} (${created.name}), owned by ${created.owner}\n` +
            `scopes: ${created.scopes.join(', ')}\n\n` +
            `    ${created.key}\n\n` +
            'This is the only time the key is shown: Warden stores its hash and cannot show it again.\n',
        );
      },
    );

  keys
    .command('revoke')
    .description('revoke an API key; requests using it are refused from now on')
    .argument('<KEY_ID>', 'the key id printed by `keys create`')
    .action(async (keyId: string) => {
      const config = loadConfig(environment);
      const revoked = await revokeApiKeyById(config.DATABASE_URL, keyId);
      if (!revoked) throw new CommandFailedError(`no live key with id ${keyId} (unknown or already revoked)`);
      io.out(`revoked key ${keyId}\n`);
    });
}
