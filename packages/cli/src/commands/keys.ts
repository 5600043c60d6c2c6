import type { Command } from 'commander';
import { z } from 'zod';
import {
  assertMigrationsCurrent,
  ensureTenant,
  findSeparationOfDuties,
  insertApiKey,
  setSeparationOfDuties,
  listApiKeys,
  type ApiKeyRecord,
  insertOperatorKey,
  revokeApiKey,
  revokeOperatorKey,
} from '@warden/db';
import {
  displayPrefix,
  effectiveScopes,
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
import { formatColumns, writeJson, type CliIo } from '../output.js';
import { closePostgres, connectPostgres } from '../postgres.js';
import { runWatched, withWatchOptions, type WatchFlags } from '../watch.js';

/** Parses one flag or argument with `schema`; a ValidationError (exit 2) quotes the value and says why. */
function parseArgument<S extends z.ZodType>(schema: S, value: string, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new ValidationError(
    `invalid ${what} "${value}": ${result.error.issues.map((issue) => issue.message).join('; ')}`,
  );
}

const KeyIdSchema = z.uuid('must be a key id (a UUID, as printed by `keys create`)');
const ReasonSchema = z.string().trim().min(3, 'say why, in a few words').max(1000);

/**
 * Splits `events:write, tasks:read` into scopes. Throws a ValidationError (exit 2) naming every unknown or
 * retired scope (listing the valid ones), when the list is empty, or when the scopes break separation of
 * duties (an agent's `events:write` with an approving scope or `admin`). Duplicates are dropped.
 */
export function parseScopes(text: string): Scope[] {
  return parseNewKeyScopes(text.split(','));
}

/**
 * The scopes' spelling only: whether they may be held together depends on the tenant's separation-of-duties
 * rule, which {@link insertApiKey} reads in the transaction that stores the key.
 */
function parseScopeNames(text: string): Scope[] {
  return parseNewKeyScopes(text.split(','), 'relaxed');
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
  const scopes = parseScopeNames(options.scopes.join(','));
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

/**
 * Creates a platform operator's key (scope `platform:operate`, bound to no tenant: Bull Board over every
 * tenant's queues). Only its hash is stored; the raw key is in the answer and nowhere else.
 */
export async function createOperatorKey(options: {
  databaseUrl: string;
  owner: string;
  /** @defaultValue `created by warden keys create-operator on <today's date>` */
  name?: string;
}): Promise<{ key: string; keyId: string; owner: string; name: string }> {
  const owner = parseArgument(KeyOwnerSchema, options.owner, 'owner');
  const name =
    options.name ?? `created by warden keys create-operator on ${new Date().toISOString().slice(0, 10)}`;
  const key = generateApiKey();
  const db = await connectPostgres(options.databaseUrl);
  try {
    await assertMigrationsCurrent(db);
    const record = await insertOperatorKey(db, {
      name,
      owner,
      keyHash: hashApiKey(key),
      keyPrefix: displayPrefix(key),
    });
    return { key, keyId: record.keyId, owner: record.owner, name: record.name };
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
  const keys = program.command('keys').description('create, list and revoke API keys');

  keys
    .command('create')
    .description('create an API key for a tenant; the key is printed once and never stored')
    .requiredOption('--tenant <tenant>', 'tenant id (created when it does not exist)')
    .requiredOption(
      '--scopes <scopes>',
      `comma-separated scopes: ${SCOPES.join(', ')}; "events:write" (an agent's) excludes "admin" and every ":approve" scope unless the tenant's separation of duties is relaxed`,
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
        const scopes = parseScopeNames(flags.scopes);
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
    .command('create-operator')
    .description(
      "create a platform operator's key (platform:operate, bound to no tenant) for Bull Board; printed once",
    )
    .requiredOption('--owner <owner>', 'the person the key belongs to')
    .option('--name <name>', 'label shown in listings')
    .option('--json', 'print { key, key_id, owner, scopes } as JSON')
    .action(async (flags: { owner: string; name?: string; json?: boolean }) => {
      const owner = parseArgument(KeyOwnerSchema, flags.owner, '--owner');
      const config = loadConfig(environment);
      const created = await createOperatorKey({
        databaseUrl: config.DATABASE_URL,
        owner,
        ...(flags.name === undefined ? {} : { name: flags.name }),
      });
      if (flags.json) {
        writeJson(io, {
          key: created.key,
          key_id: created.keyId,
          owner: created.owner,
          scopes: ['platform:operate'],
        });
        return;
      }
      io.out(
        `created operator key ${created.keyId} (${created.name}), owned by ${created.owner}\n` +
          "scopes: platform:operate (every tenant's queues in Bull Board; no tenant API)\n\n" +
          `    ${created.key}\n\n` +
          'This is the only time the key is shown: Warden stores its hash and cannot show it again.\n',
      );
    });

  keys
    .command('revoke-operator')
    .description("revoke a platform operator's key")
    .argument('<KEY_ID>', 'the key id printed by `keys create-operator`')
    .action(async (keyId: string) => {
      const id = parseArgument(KeyIdSchema, keyId, 'KEY_ID');
      const config = loadConfig(environment);
      const db = await connectPostgres(config.DATABASE_URL);
      try {
        await assertMigrationsCurrent(db);
        if (!(await revokeOperatorKey(db, id)))
          throw new CommandFailedError(`no live operator key with id ${keyId} (unknown or already revoked)`);
      } finally {
        await closePostgres(db);
      }
      io.out(`revoked operator key ${keyId}\n`);
    });

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

  keys
    .command('separation-of-duties')
    .description(
      "show or set a tenant's separation-of-duties rule (a platform operator's act, audited in the tenant's chain)",
    )
    .argument('<TENANT>', 'tenant id')
    .option('--relax', "let this tenant's keys hold events:write together with approving scopes")
    .option('--enforce', 'strip approving scopes from every key that writes events (the default rule)')
    .option('--reason <text>', 'why (required with --relax or --enforce; recorded in the audit row)')
    .option('--by <name>', 'the operator making the change (required with --relax or --enforce)')
    .option('--json', 'print { tenant_id, rule, previous } as JSON')
    .action(
      async (
        tenant: string,
        flags: { relax?: boolean; enforce?: boolean; reason?: string; by?: string; json?: boolean },
      ) => {
        const tenantId = parseArgument(TenantIdSchema, tenant, 'TENANT');
        if (flags.relax && flags.enforce)
          throw new ValidationError('give --relax or --enforce, not both', [
            { path: '--relax', message: 'conflicts with --enforce' },
          ]);
        const rule = flags.relax ? 'relaxed' : flags.enforce ? 'enforced' : undefined;
        let reason: string | undefined;
        let by: string | undefined;
        if (rule) {
          reason = parseArgument(ReasonSchema, flags.reason ?? '', '--reason');
          by = parseArgument(KeyOwnerSchema, flags.by ?? '', '--by');
        }
        const config = loadConfig(environment);
        const db = await connectPostgres(config.DATABASE_URL);
        let result: { previous: string; rule: string } | undefined;
        try {
          await assertMigrationsCurrent(db);
          if (rule && reason && by) {
            result = await setSeparationOfDuties(db, { tenantId, rule, by, reason });
          } else {
            const current = await findSeparationOfDuties(db, tenantId);
            result = current ? { previous: current, rule: current } : undefined;
          }
        } finally {
          await closePostgres(db);
        }
        if (!result) throw new CommandFailedError(`no tenant ${tenantId}`);
        if (flags.json)
          return writeJson(io, { tenant_id: tenantId, rule: result.rule, previous: result.previous });
        if (!rule) return io.out(`separation of duties for ${tenantId}: ${result.rule}\n`);
        io.out(
          result.previous === result.rule
            ? `separation of duties for ${tenantId} was already ${result.rule}; nothing changed\n`
            : `separation of duties for ${tenantId}: ${result.previous} → ${result.rule} (audited)\n` +
                (result.rule === 'relaxed'
                  ? "keys of this tenant may now hold events:write with approving scopes: an agent's key can approve its own work\n"
                  : 'keys holding events:write lose their approving scopes at their next request\n'),
        );
      },
    );

  const list = keys
    .command('list')
    .description('list API keys (never a key or its hash): id, tenant, name, owner, prefix, scopes, created')
    .option('--tenant <tenant>', "only this tenant's keys (default: every tenant)")
    .option('--revoked', 'include revoked keys')
    .option('--json', 'print the keys as a JSON array');
  withWatchOptions(list).action(
    async (flags: WatchFlags & { tenant?: string; revoked?: boolean; json?: boolean }) => {
      const tenantId =
        flags.tenant === undefined ? undefined : parseArgument(TenantIdSchema, flags.tenant, '--tenant');
      const config = loadConfig(environment);
      await runWatched(io, flags, (out) => printKeys(out, config.DATABASE_URL, tenantId, flags));
    },
  );
}

/** One read of the key list, printed as a table or JSON. */
async function printKeys(
  io: CliIo,
  databaseUrl: string,
  tenantId: string | undefined,
  flags: { revoked?: boolean; json?: boolean },
): Promise<void> {
  const db = await connectPostgres(databaseUrl);
  let listed: ApiKeyRecord[];
  try {
    await assertMigrationsCurrent(db);
    listed = await listApiKeys(db, {
      ...(tenantId === undefined ? {} : { tenantId }),
      includeRevoked: flags.revoked ?? false,
    });
  } finally {
    await closePostgres(db);
  }
  // What a request with the key may do: a stored key that also writes events has no approving scope.
  const rows = listed.map((k) => ({
    key_id: k.keyId,
    tenant_id: k.tenantId,
    name: k.name,
    owner: k.owner,
    prefix: k.keyPrefix,
    scopes: effectiveScopes(k.scopes, k.separationOfDuties),
    created_at: k.createdAt.toISOString(),
    revoked_at: k.revokedAt?.toISOString() ?? null,
  }));
  if (flags.json) return writeJson(io, rows);
  if (rows.length === 0)
    return io.out(`no ${flags.revoked ? '' : 'live '}keys${tenantId ? ` for tenant ${tenantId}` : ''}\n`);
  const table = [
    [
      'KEY ID',
      'TENANT',
      'NAME',
      'OWNER',
      'PREFIX',
      'SCOPES',
      'CREATED',
      ...(flags.revoked ? ['REVOKED'] : []),
    ],
    ...rows.map((r) => [
      r.key_id,
      r.tenant_id,
      r.name,
      r.owner,
      r.prefix,
      r.scopes.join(','),
      r.created_at.slice(0, 19),
      ...(flags.revoked ? [r.revoked_at?.slice(0, 19) ?? '-'] : []),
    ]),
  ];
  io.out(formatColumns(table));
}
