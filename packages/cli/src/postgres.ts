import { createDb, pingDatabase, type Db } from '@warden/db';
import { CommandFailedError, describeError } from './errors.js';
import { describeUrl } from './output.js';
import { withTimeout } from './timeout.js';

/** How long the CLI waits for Postgres to accept a connection. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

/**
 * Opens a small pool on `url` and proves it works with one query, so a command fails before doing
 * anything when Postgres is away. The caller owns the returned Db and must `destroy()` it.
 * Throws a {@link CommandFailedError} (exit 1) whose single line names the server and the reason.
 */
export async function connectPostgres(url: string, timeoutMs = DEFAULT_CONNECT_TIMEOUT_MS): Promise<Db> {
  const db = createDb({
    url,
    maxConnections: 2,
    applicationName: 'warden-cli',
    connectionTimeoutMs: timeoutMs,
  });
  try {
    await withTimeout(pingDatabase(db), timeoutMs, 'connecting');
    return db;
  } catch (error) {
    await closePostgres(db);
    throw postgresConnectError(url, error);
  }
}

export function postgresConnectError(url: string, error: unknown): CommandFailedError {
  return new CommandFailedError(
    `cannot connect to Postgres at ${describeUrl(url)}: ${describePostgresError(error)}`,
  );
}

/** The error's one line, plus what to do about the failures people meet most. */
export function describePostgresError(error: unknown): string {
  const text = describeError(error);
  // 3D000 invalid_catalog_name: the server is up but the database was never created.
  if ((error as { code?: unknown }).code === '3D000')
    return `${text} (create it with \`warden migrate --create-db\`)`;
  return text;
}

/** Closes the pool without ever hanging the CLI on a stuck connection. */
export async function closePostgres(db: Db, timeoutMs = 2000): Promise<void> {
  await withTimeout(db.destroy(), timeoutMs, 'closing Postgres').catch(() => {});
}
