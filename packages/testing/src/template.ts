import { createHash } from 'node:crypto';
import { createDb, dropDatabase, ensureDatabase, migrateToLatest, migrations } from '@warden/db';
import { databaseUrlFor } from './servers.js';

/**
 * A migrated template database, named after the migration list so a new migration makes a new template.
 * Each test file then gets `CREATE DATABASE … TEMPLATE` — a file copy, much faster than migrating again.
 */
export function templateDatabaseName(): string {
  const digest = createHash('sha256').update(Object.keys(migrations).join('\n')).digest('hex').slice(0, 12);
  return `warden_template_${digest}`;
}

/** Creates and migrates the template if it is missing (vitest globalSetup calls this once per run). */
export async function ensureTemplateDatabase(): Promise<string> {
  const name = templateDatabaseName();
  const url = databaseUrlFor(name);
  const created = await ensureDatabase(url);
  if (created) {
    const db = createDb({ url, maxConnections: 1 });
    try {
      await migrateToLatest(db);
    } catch (error) {
      await db.destroy();
      await dropDatabase(url);
      throw error;
    }
    await db.destroy();
  }
  return name;
}
