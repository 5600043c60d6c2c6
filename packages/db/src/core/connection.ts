import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from '../database.js';

// timestamptz and bigint come back as Date and string; int8 ids stay strings so they never lose precision.

export interface CreateDbOptions {
  /** Postgres connection string. */
  url: string;
  /** Pool size. @defaultValue `10` */
  maxConnections?: number;
  /** Name shown in `pg_stat_activity`. @defaultValue `warden` */
  applicationName?: string;
  /** Fail a connection attempt after this long. @defaultValue `5000` */
  connectionTimeoutMs?: number;
  /**
   * Told about a pooled connection that broke (Postgres restarted, the network dropped it), e.g. to log it. The
   * query that was using it fails on its own; the pool replaces the connection. @defaultValue ignore it
   */
  onConnectionError?: (error: Error) => void;
}

export type Db = Kysely<Database>;

/** Creates a pooled Kysely instance. The caller owns it and must `destroy()` it on shutdown. */
export function createDb(options: CreateDbOptions): Db {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    application_name: options.applicationName ?? 'warden',
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 5000,
  });
  const onConnectionError = options.onConnectionError ?? (() => {});
  // A connection that breaks emits 'error', and an 'error' nobody listens to ends the process. The pool listens
  // only while a client is idle; a client checked out (Kysely holds one for a whole transaction) has no listener
  // of its own, so 57P01 admin_shutdown or "Connection terminated unexpectedly" between two of its queries would
  // crash the service. Every client gets a listener for its whole life: the query in flight fails by itself, and
  // on release the pool sees the client is no longer queryable and drops it.
  pool.on('connect', (client) => client.on('error', onConnectionError));
  // An idle client losing its connection: the pool already removed it; the next query makes a new one.
  pool.on('error', onConnectionError);
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/** Splits `postgres://…/name` into the database name and a URL of the `postgres` maintenance database. */
export function maintenanceUrl(url: string): { database: string; adminUrl: string } {
  const parsed = new URL(url);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || 'postgres';
  parsed.pathname = '/postgres';
  return { database, adminUrl: parsed.toString() };
}

/** Creates the database named in `url` when it does not exist. Returns true when it created it. */
export async function ensureDatabase(url: string, template?: string): Promise<boolean> {
  const { database, adminUrl } = maintenanceUrl(url);
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (found.rowCount) return false;
    const quoted = '"' + database.replaceAll('"', '""') + '"';
    const fromTemplate = template ? ` template "${template.replaceAll('"', '""')}"` : '';
    try {
      await client.query(`create database ${quoted}${fromTemplate}`);
    } catch (error) {
      // Two processes racing to create the same database: the loser sees 42P04 and is fine.
      if ((error as { code?: string }).code !== '42P04') throw error;
      return false;
    }
    return true;
  } finally {
    await client.end();
  }
}

/** Drops a database (tests). Terminates its open connections first. */
export async function dropDatabase(url: string): Promise<void> {
  const { database, adminUrl } = maintenanceUrl(url);
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const quoted = '"' + database.replaceAll('"', '""') + '"';
    await client.query(`drop database if exists ${quoted} with (force)`);
  } finally {
    await client.end();
  }
}
