import { Migrator, type MigrationResult } from 'kysely';
import { MigrationsBehindError } from '@warden/domain';
import type { Db } from './connection.js';
import { migrations } from '../migrations/index.js';

function createMigrator(db: Db): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'warden_migrations',
    migrationLockTableName: 'warden_migrations_lock',
  });
}

export interface MigrateResult {
  /** Names applied by this call, in order (empty when the database was current). */
  applied: string[];
}

/**
 * Applies every pending migration. Safe to run concurrently (Kysely takes a lock) and repeatedly.
 * Throws the underlying error, naming the migration that failed.
 */
export async function migrateToLatest(db: Db): Promise<MigrateResult> {
  const { error, results } = await createMigrator(db).migrateToLatest();
  const applied = (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  if (error) {
    const failed =
      (results ?? []).find((r: MigrationResult) => r.status === 'Error')?.migrationName ?? 'unknown';
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`migration ${failed} failed: ${reason}`);
  }
  return { applied };
}

/** Names of the migrations this build knows and the database has not applied. */
export async function pendingMigrations(db: Db): Promise<string[]> {
  const all = await createMigrator(db).getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}

/** Throws {@link MigrationsBehindError} when the database is behind; services call it before starting. */
export async function assertMigrationsCurrent(db: Db): Promise<void> {
  const pending = await pendingMigrations(db);
  if (pending.length > 0) throw new MigrationsBehindError(pending);
}
