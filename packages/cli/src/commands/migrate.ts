import type { Command } from 'commander';
import { ensureDatabase, maintenanceUrl, migrateToLatest, migrations } from '@warden/db';
import { loadConfig, type CliEnvironment } from '../config.js';
import { plural, writeJson, type CliIo } from '../output.js';
import {
  closePostgres,
  connectPostgres,
  DEFAULT_CONNECT_TIMEOUT_MS,
  postgresConnectError,
} from '../postgres.js';
import { withTimeout } from '../timeout.js';

export interface MigrateOptions {
  /** Connection string of the database to migrate. */
  databaseUrl: string;
  /** Create the database named in `databaseUrl` when it does not exist. @defaultValue `false` */
  createDatabase?: boolean;
  /** How long to wait for Postgres to accept a connection. @defaultValue `5000` */
  connectTimeoutMs?: number;
}

export interface MigrateReport {
  /** The database did not exist and this run created it (only with `createDatabase`). */
  databaseCreated: boolean;
  /** Migrations applied by this run, in order; empty when the database was already current. */
  applied: string[];
  /** How many migrations this build knows. */
  total: number;
}

/**
 * Brings the database to the latest migration. Safe to run repeatedly and concurrently (Kysely holds a
 * lock while migrating). Throws a CommandFailedError naming the server when Postgres cannot be reached,
 * and the failing migration's error otherwise.
 *
 * @example
 * const { applied } = await runMigrate({ databaseUrl: 'postgres://postgres@127.0.0.1:5432/warden', createDatabase: true });
 */
export async function runMigrate(options: MigrateOptions): Promise<MigrateReport> {
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  let databaseCreated = false;
  if (options.createDatabase) {
    try {
      databaseCreated = await withTimeout(
        ensureDatabase(options.databaseUrl),
        timeoutMs,
        'creating the database',
      );
    } catch (error) {
      throw postgresConnectError(maintenanceUrl(options.databaseUrl).adminUrl, error);
    }
  }
  const db = await connectPostgres(options.databaseUrl, timeoutMs);
  try {
    const { applied } = await migrateToLatest(db);
    return { databaseCreated, applied, total: Object.keys(migrations).length };
  } finally {
    await closePostgres(db);
  }
}

export function registerMigrateCommand(program: Command, environment: CliEnvironment, io: CliIo): void {
  program
    .command('migrate')
    .description('apply pending database migrations (safe to repeat)')
    .option('--create-db', 'create the database named in DATABASE_URL when it does not exist')
    .option('--json', 'print the result as JSON')
    .action(async (flags: { createDb?: boolean; json?: boolean }) => {
      const config = loadConfig(environment);
      const report = await runMigrate({
        databaseUrl: config.DATABASE_URL,
        createDatabase: flags.createDb === true,
      });
      if (flags.json) {
        writeJson(io, {
          database_created: report.databaseCreated,
          applied: report.applied,
          total: report.total,
        });
        return;
      }
      if (report.databaseCreated)
        io.out(`created database ${maintenanceUrl(config.DATABASE_URL).database}\n`);
      for (const name of report.applied) io.out(`applied ${name}\n`);
      io.out(
        report.applied.length === 0
          ? `database is current (${plural(report.total, 'migration')})\n`
          : `applied ${plural(report.applied.length, 'migration')}\n`,
      );
    });
}
