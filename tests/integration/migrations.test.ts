import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Migrator, sql } from 'kysely';
import { assertMigrationsCurrent, migrateToLatest, migrations, pendingMigrations } from '@warden/db';
import { MigrationsBehindError } from '@warden/domain';
import { createTestDatabase, type TestDatabase } from '@warden/testing';

describe('migrations', () => {
  let empty: TestDatabase;

  beforeAll(async () => {
    empty = await createTestDatabase({ migrated: false });
  });
  afterAll(async () => {
    await empty.drop();
  });

  it('should report an empty database as behind, naming every migration', async () => {
    await expect(assertMigrationsCurrent(empty.db)).rejects.toBeInstanceOf(MigrationsBehindError);
    expect(await pendingMigrations(empty.db)).toEqual(Object.keys(migrations));
  });

  it('should apply every migration from empty, then apply nothing the second time', async () => {
    const first = await migrateToLatest(empty.db);
    expect(first.applied).toEqual(Object.keys(migrations));
    const second = await migrateToLatest(empty.db);
    expect(second.applied).toEqual([]);
    await expect(assertMigrationsCurrent(empty.db)).resolves.toBeUndefined();
  });

  it('should create the core tables', async () => {
    const { rows } = await sql<{ table_name: string }>`
      select table_name from information_schema.tables where table_schema = 'public' order by table_name`.execute(
      empty.db,
    );
    const names = rows.map((r) => r.table_name);
    for (const table of [
      'tenants',
      'api_keys',
      'tasks',
      'supervisor_inbox',
      'task_audits',
      'task_gates',
      'decisions',
    ]) {
      expect(names).toContain(table);
    }
  });

  it('should be safe when two migrators run at once', async () => {
    const other = await createTestDatabase({ migrated: false });
    try {
      const results = await Promise.all([migrateToLatest(other.db), migrateToLatest(other.db)]);
      const applied = results.flatMap((r) => r.applied);
      expect(applied.sort()).toEqual(Object.keys(migrations).sort());
    } finally {
      await other.drop();
    }
  });
});

describe('migration 2026_12_03_0004_separation_of_duties', () => {
  const NAME = '2026_12_03_0004_separation_of_duties';
  let database: TestDatabase;
  const migrator = (db: TestDatabase['db']) =>
    new Migrator({
      db,
      provider: { getMigrations: async () => migrations },
      migrationTableName: 'warden_migrations',
      migrationLockTableName: 'warden_migrations_lock',
    });
  const previous = () => {
    const names = Object.keys(migrations);
    return names[names.indexOf(NAME) - 1]!;
  };
  /** Keys as a database of the previous version holds them: no owner, `tasks:write` still granted. */
  const OLD_KEYS: Record<string, string[]> = {
    agent: ['events:write', 'tasks:read', 'tasks:write'],
    operator: ['tasks:read', 'tasks:write'],
    'agent-approver': ['events:write', 'changesets:approve', 'lead:read'],
    'agent-admin': ['admin', 'events:write'],
    reader: ['tasks:read'],
    admin: ['admin'],
  };
  const scopesByName = async () =>
    Object.fromEntries(
      (
        await sql<{
          name: string;
          scopes: string[];
        }>`select name, scopes from api_keys order by name`.execute(database.db)
      ).rows.map((row) => [row.name, row.scopes]),
    );

  beforeAll(async () => {
    database = await createTestDatabase({ migrated: false });
    const result = await migrator(database.db).migrateTo(previous());
    expect(result.error).toBeUndefined();
    await sql`insert into tenants (tenant_id, name) values ('acme', 'acme')`.execute(database.db);
    for (const [name, scopes] of Object.entries(OLD_KEYS))
      await sql`insert into api_keys (tenant_id, name, key_hash, key_prefix, scopes)
                values ('acme', ${name}, ${`hash-of-${name}`}, ${`wdn_${name}`.slice(0, 10)}, ${scopes})`.execute(
        database.db,
      );
    await migrateToLatest(database.db);
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('should turn tasks:write into tasks:approve, unless the key writes events, and strip approvers from agent keys', async () => {
    expect(await scopesByName()).toEqual({
      agent: ['events:write', 'tasks:read'],
      operator: ['tasks:read', 'tasks:approve'],
      'agent-approver': ['events:write', 'lead:read'],
      'agent-admin': ['events:write'],
      reader: ['tasks:read'],
      admin: ['admin'],
    });
  });

  it('should give every old key its name as owner', async () => {
    const { rows } = await sql<{ name: string; owner: string }>`select name, owner from api_keys`.execute(
      database.db,
    );
    expect(rows).toHaveLength(Object.keys(OLD_KEYS).length);
    for (const row of rows) expect(row.owner).toBe(row.name);
  });

  it('should record what it took from which key, and nothing secret', async () => {
    const changes = await database.db
      .selectFrom('api_key_scope_changes as c')
      .innerJoin('api_keys as k', 'k.key_id', 'c.key_id')
      .select(['k.name', 'c.removed', 'c.added', 'c.reason', 'c.key_prefix', 'c.owner'])
      .orderBy('k.name')
      .execute();
    expect(changes.map(({ name, removed, added }) => ({ name, removed, added }))).toEqual([
      { name: 'agent', removed: ['tasks:write'], added: [] },
      { name: 'agent-admin', removed: ['admin'], added: [] },
      { name: 'agent-approver', removed: ['changesets:approve'], added: [] },
      { name: 'operator', removed: ['tasks:write'], added: ['tasks:approve'] },
    ]);
    expect(changes.find((c) => c.name === 'agent')!.reason).toMatch(/separation of duties/);
    const { rows } = await sql<{
      row: string;
    }>`select row_to_json(c)::text as row from api_key_scope_changes c`.execute(database.db);
    for (const { row } of rows) expect(row).not.toContain('hash-of-');
  });

  it('should give back what it took when migrated down', async () => {
    const result = await migrator(database.db).migrateTo(previous());
    expect(result.error).toBeUndefined();
    const restored = await scopesByName();
    for (const [name, scopes] of Object.entries(OLD_KEYS))
      expect([...restored[name]!].sort()).toEqual([...scopes].sort());
    await migrateToLatest(database.db);
    expect((await scopesByName()).operator).toEqual(['tasks:read', 'tasks:approve']);
  });
});
