import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
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
