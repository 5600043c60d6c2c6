import { sql } from 'kysely';
import type { Db } from './connection.js';

/** Resolves when Postgres answers a trivial query; throws its error otherwise (readiness checks). */
export async function pingDatabase(db: Db): Promise<void> {
  await sql`select 1`.execute(db);
}
