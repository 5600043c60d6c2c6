/**
 * A Postgres server of a test's own: a fresh cluster (initdb) in a temporary directory on a free port, started
 * from the installed binaries, so a chaos test can stop and restart it without touching the shared server.
 * As root, the server runs as the `postgres` system user (Postgres refuses to run as root), as scripts/stack.mjs
 * does.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createDb, ensureDatabase, migrateToLatest } from '@warden/db';
import { freePort } from './supervisor.js';

const run = promisify(execFile);

export interface OwnPostgres {
  port: number;
  /** Connection string of the migrated `warden` database on this server. */
  url: string;
  /** Stops the server (`-m fast`: every session is terminated with 57P01 admin_shutdown). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and deletes its data directory; safe to call twice or after a failed start. */
  destroy(): Promise<void>;
}

/** util-linux's runuser lives in an sbin directory, which a user's PATH may not list. */
const RUNUSER =
  ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find((path) => existsSync(path)) ?? 'runuser';

function postgresBinary(name: string): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) {
    const path = join(base, version, 'bin', name);
    if (existsSync(path)) return path;
  }
  return name; // on PATH (macOS, other distributions)
}

/** Initialises, starts and migrates a private Postgres. */
export async function ownPostgresServer(): Promise<OwnPostgres> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'warden-pg-'));
  const dataDir = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chownSync(dir, ...(await postgresIds()));
  const pgCtl = postgresBinary('pg_ctl');
  const exec = async (command: string, args: string[]) => {
    const [file, argv] = asRoot ? [RUNUSER, ['-u', 'postgres', '--', command, ...args]] : [command, args];
    await run(file, argv, { timeout: 60_000 });
  };
  let running = false;
  const start = async () => {
    await exec(pgCtl, [
      '-D',
      dataDir,
      '-l',
      join(dir, 'server.log'),
      '-w',
      '-o',
      `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c max_connections=200`,
      'start',
    ]);
    running = true;
  };
  const stop = async () => {
    if (!running) return;
    await exec(pgCtl, ['-D', dataDir, '-w', '-m', 'fast', 'stop']);
    running = false;
  };
  const destroy = async () => {
    await exec(pgCtl, ['-D', dataDir, '-w', '-m', 'immediate', 'stop']).catch(() => {});
    running = false;
    rmSync(dir, { recursive: true, force: true });
  };
  // Never leave a server behind, even when the test process goes down before its teardown.
  const onExit = () => {
    if (!running) return;
    const args = ['-D', dataDir, '-m', 'immediate', 'stop'];
    try {
      if (asRoot) execFileSync(RUNUSER, ['-u', 'postgres', '--', pgCtl, ...args], { stdio: 'ignore' });
      else execFileSync(pgCtl, args, { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // nothing more to do on the way out
    }
  };
  process.once('exit', onExit);
  try {
    await exec(postgresBinary('initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8']);
    await start();
    const url = `postgres://postgres@127.0.0.1:${port}/warden`;
    await ensureDatabase(url);
    const db = createDb({ url, maxConnections: 1 });
    try {
      await migrateToLatest(db);
    } finally {
      await db.destroy();
    }
    return {
      port,
      url,
      start,
      stop,
      async destroy() {
        process.off('exit', onExit);
        await destroy();
      },
    };
  } catch (error) {
    process.off('exit', onExit);
    await destroy();
    throw error;
  }
}

async function postgresIds(): Promise<[number, number]> {
  const { stdout: uid } = await run('id', ['-u', 'postgres']);
  const { stdout: gid } = await run('id', ['-g', 'postgres']);
  return [Number(uid.trim()), Number(gid.trim())];
}
