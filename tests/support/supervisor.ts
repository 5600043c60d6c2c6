/**
 * Helpers for the supervisor suites: the real supervisor-worker in this process over a test's own database and
 * queue prefix, a DecisionProcessor built directly (for custom registries and failure hooks), a Redis server of
 * a test's own (to stop and restart), and wait-until helpers that poll Postgres against a deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Db } from '@warden/db';
import {
  SupervisorPolicyFileSchema,
  builtInPolicies,
  parsePolicyYaml,
  toAuditChainContent,
  type ChainedAuditRow,
  type SupervisorPolicyFile,
  type TaskEvent,
} from '@warden/domain';
import { createLogger, type Logger } from '@warden/observability';
import { createRedis } from '@warden/queue';
import { testServers, waitFor as waitForShared, type WaitOptions } from '@warden/testing';
import {
  DecisionProcessor,
  createSupervisorService,
  loadConfig,
  type Config,
  type InboxPoller,
  type SupervisorService,
} from '@warden/supervisor-worker';

type DecisionProcessorOptions = ConstructorParameters<typeof DecisionProcessor>[0];

/** The repository's supervisor policy file (the one the service loads by default). */
export const POLICY_FILE = fileURLToPath(new URL('../../infra/policies/supervisor.yaml', import.meta.url));

/** A logger that writes nothing. */
export function silentLogger(): Logger {
  return createLogger({ service: 'supervisor-test', level: 'silent' });
}

/** The repository's supervisor policy, parsed and validated as the service does at start-up. */
export async function loadTestPolicy(
  overrides: (policy: SupervisorPolicyFile) => SupervisorPolicyFile = (p) => p,
): Promise<SupervisorPolicyFile> {
  return overrides(
    parsePolicyYaml(await readFile(POLICY_FILE, 'utf8'), SupervisorPolicyFileSchema, POLICY_FILE),
  );
}

export interface TestSupervisor {
  service: SupervisorService;
  config: Config;
  processor: DecisionProcessor;
  poller: InboxPoller;
  stop(): Promise<void>;
}

/**
 * The real supervisor-worker, started in this process over `databaseUrl` and `prefix`. Silent, ops server on a
 * free port. The background poller runs once an hour (in effect never) unless `env` says otherwise, so a test that wants the
 * poller calls `pollOnce()` itself or sets a short `POLL_INTERVAL_MS`/`POLL_GRACE_MS`.
 */
export async function startTestSupervisor(options: {
  databaseUrl: string;
  prefix: string;
  redisUrl?: string;
  env?: Record<string, string>;
  /** A module (file URL) whose `createPolicyRegistry()` replaces the built-in policies. */
  policyRegistryModule?: string;
}): Promise<TestSupervisor> {
  const config = loadConfig({
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: options.redisUrl ?? testServers.redisUrl,
    QUEUE_PREFIX: options.prefix,
    OPS_PORT: '0',
    LOG_LEVEL: 'silent',
    SUPERVISOR_POLICY_FILE: POLICY_FILE,
    POLL_INTERVAL_MS: '3600000',
    DB_POOL_SIZE: '6',
    ...options.env,
  });
  const service = createSupervisorService(
    config,
    options.policyRegistryModule ? { policyRegistryModule: options.policyRegistryModule } : {},
  );
  await service.start();
  const processor = service.processor();
  const poller = service.poller();
  if (!processor || !poller) throw new Error('the supervisor started without a processor or poller');
  return { service, config, processor, poller, stop: () => service.stop() };
}

/** A DecisionProcessor over `db` with the repository's policy and the built-in policies, unless overridden. */
export async function createTestProcessor(
  db: Db,
  options: Partial<DecisionProcessorOptions> = {},
): Promise<DecisionProcessor> {
  return new DecisionProcessor({
    ...options,
    db,
    policy: options.policy ?? (await loadTestPolicy()),
    registry: options.registry ?? builtInPolicies(),
    logger: options.logger ?? silentLogger(),
  });
}

/** A complete task event as the queue carries it (source `queue`, `ts` now). */
export function taskEvent(tenantId: string, eventId: string, overrides: Partial<TaskEvent> = {}): TaskEvent {
  return {
    event_id: eventId,
    tenant_id: tenantId,
    task_id: 'task-1',
    event_type: 'TASK_STATE_CHANGED',
    ts: new Date().toISOString(),
    source: 'queue',
    payload: {},
    ...overrides,
  };
}

/** The shared wait helper with the supervisor tests' defaults (15 s, 25 ms between probes). */
export function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  options: WaitOptions = {},
): Promise<T> {
  return waitForShared(what, probe, { timeoutMs: 15_000, intervalMs: 25, ...options });
}

/**
 * Waits for `promise` at most `ms` and says whether it settled; for teardown, which must go on regardless.
 * A BullMQ worker closed while its Redis client is reconnecting never finishes closing (taskforcesh/bullmq#4656).
 */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Inbox rows of these events, by event id. */
export async function inboxRows(db: Db, tenantId: string, eventIds: readonly string[]) {
  if (eventIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('supervisor_inbox')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('event_id', 'in', [...eventIds])
    .execute();
  return new Map(rows.map((row) => [row.event_id, row]));
}

/** Waits until every one of the events has an inbox row in `status`. */
export async function waitForInboxStatus(
  db: Db,
  tenantId: string,
  eventIds: readonly string[],
  status: string,
  timeoutMs = 15_000,
): Promise<void> {
  try {
    await waitFor(
      `${eventIds.length} inbox row(s) of ${tenantId} to be ${status}`,
      async () => {
        const rows = await inboxRows(db, tenantId, eventIds);
        return eventIds.every((id) => rows.get(id)?.status === status);
      },
      { timeoutMs },
    );
  } catch (error) {
    // Where each row got stuck, so a timeout in CI says more than "not yet".
    const rows = await inboxRows(db, tenantId, eventIds);
    const states = eventIds.map((id) => {
      const row = rows.get(id);
      if (!row) return `${id}: no row`;
      const enqueued = row.last_enqueued_at ? new Date(row.last_enqueued_at).toISOString() : 'never';
      return `${id}: ${row.status}, attempts ${row.attempts}, last enqueued ${enqueued}${row.error ? `, error ${row.error}` : ''}`;
    });
    throw new Error(
      `${(error as Error).message}; at ${new Date().toISOString()}:\n  ${states.join('\n  ')}`,
      {
        cause: error,
      },
    );
  }
}

/** Decision rows of one event. */
export function decisionsOf(db: Db, tenantId: string, eventId: string) {
  return db
    .selectFrom('decisions')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('event_id', '=', eventId)
    .execute();
}

/** Audit rows of one event, oldest first. */
export function auditsOf(db: Db, tenantId: string, eventId: string) {
  return db
    .selectFrom('task_audits')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('event_id', '=', eventId)
    .orderBy('audit_id')
    .execute();
}

/** A tenant's audit rows in chain order, shaped for `findChainBreak`. */
export async function auditChain(db: Db, tenantId: string): Promise<ChainedAuditRow[]> {
  const rows = await db
    .selectFrom('task_audits')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('chain_seq')
    .execute();
  return rows.map((row) => ({
    ...toAuditChainContent({ ...row, chain_seq: row.chain_seq ?? 0 }),
    audit_id: String(row.audit_id),
    prev_hash: row.prev_hash ?? '',
    row_hash: row.row_hash ?? '',
  }));
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export interface OwnRedis {
  port: number;
  url: string;
  /** Starts the server (again, on the same port) and waits until it answers PING. */
  start(): Promise<void>;
  /** Kills the server (nothing is saved) and waits for it to exit. Safe to call when it is not running. */
  stop(): Promise<void>;
  isRunning(): boolean;
}

/** A `redis-server` of the test's own on a free port, keeping nothing on disk, so it can be stopped and restarted. */
export async function ownRedisServer(): Promise<OwnRedis> {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  const ping = async (): Promise<boolean> => {
    const client = createRedis(url, 'general', {
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: 500,
    });
    try {
      return (await client.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      client.disconnect();
    }
  };

  const serverPid = async (): Promise<number | undefined> => {
    const client = createRedis(url, 'general', { maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      const match = /process_id:(\d+)/.exec(await client.info('server'));
      return match ? Number(match[1]) : undefined;
    } catch {
      return undefined;
    } finally {
      client.disconnect();
    }
  };

  return {
    port,
    url,
    async start() {
      const started = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { stdio: 'ignore' },
      );
      child = started;
      // Never outlive the test process, even when its teardown did not run to the end.
      const killOnExit = () => started.kill('SIGKILL');
      process.once('exit', killOnExit);
      started.once('exit', () => {
        process.off('exit', killOnExit);
        if (child === started) child = undefined;
      });
      await waitFor(`redis-server on port ${port}`, ping, { timeoutMs: 10_000, intervalMs: 50 });
      // The port was free when chosen, not necessarily since: a server that answers but is not this child
      // means another process took the port while it was stopped, and the test would talk to a stranger.
      if (child !== started || (await serverPid()) !== started.pid) {
        started.kill('SIGKILL');
        throw new Error(`port ${port} was taken while this test's redis-server was stopped`);
      }
    },
    isRunning: () => child !== undefined,
    async stop() {
      const running = child;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
      running.kill('SIGKILL');
      await exited;
    },
  };
}
