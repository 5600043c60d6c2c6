import { randomUUID } from 'node:crypto';
import { createDb, dropDatabase, ensureDatabase, type Db } from '@warden/db';
import { databaseUrlFor } from './servers.js';
import { ensureTemplateDatabase } from './template.js';

export interface TestDatabase {
  /** Connection string of this test's own database. */
  url: string;
  db: Db;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database of its own for one test file (or test). Call `drop()` in `afterAll`.
 * Pass `{ migrated: false }` for an empty database (migration tests).
 */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const name = `warden_t_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const url = databaseUrlFor(name);
  const template = options.migrated === false ? undefined : await ensureTemplateDatabase();
  for (let attempt = 0; ; attempt++) {
    try {
      await ensureDatabase(url, template);
      break;
    } catch (error) {
      // 55006: the template is briefly in use (another file is being created from it); try again.
      if ((error as { code?: string }).code !== '55006' || attempt >= 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 100));
    }
  }
  const db = createDb({ url, maxConnections: 5, applicationName: 'warden-test' });
  return {
    url,
    db,
    drop: async () => {
      await db.destroy();
      await dropDatabase(url);
    },
  };
}
