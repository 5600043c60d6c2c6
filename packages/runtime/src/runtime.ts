import { assertMigrationsCurrent, createDb, pingDatabase, type Db } from '@warden/db';
import {
  createLogger,
  createMetricsRegistry,
  startOpsServer,
  type Logger,
  type OpsServer,
  type ReadinessCheck,
  type Registry,
} from '@warden/observability';
import {
  WardenQueues,
  createRedis,
  waitForClusterReady,
  openLockClients,
  pingRedis,
  type LockClients,
  type RedisConnection,
  type RedisRole,
} from '@warden/queue';

export interface RuntimeConfig {
  DATABASE_URL: string;
  /** One Redis server, or a Redis Cluster (`redis+cluster://host:port,…`). */
  REDIS_URL: string;
  /** Independent Redis servers for locks; empty: locks are taken on `REDIS_URL`. @defaultValue `[]` */
  REDLOCK_URLS?: readonly string[];
  /** BullMQ key prefix of every queue. */
  QUEUE_PREFIX: string;
  LOG_LEVEL: string;
}

export interface OpenRuntimeOptions {
  /** Service name on every log line and metric. */
  service: string;
  config: RuntimeConfig;
  /** Start a separate `/healthz` `/readyz` `/metrics` server on this port; omit when the service serves them itself (the API). */
  opsPort?: number;
  /** Postgres pool size. @defaultValue `10` */
  maxDbConnections?: number;
  /** A logger to use instead of a new one (tests). */
  logger?: Logger;
  /**
   * How the queues' connection behaves: `producer` fails fast when Redis is away (a request path: the API),
   * `general` retries a little (background work). @defaultValue `'general'`
   */
  queueConnectionRole?: Extract<RedisRole, 'producer' | 'general'>;
}

/** What a started service holds: its logger, metrics, Postgres and a general-purpose Redis client. */
export interface ServiceRuntime {
  logger: Logger;
  registry: Registry;
  db: Db;
  redis: RedisConnection;
  readiness: Record<string, ReadinessCheck>;
  ops?: OpsServer;
  /** Every queue of the catalog, on its own connection, for enqueueing. */
  queues: WardenQueues;
  /** The queues' connection (e.g. for a readiness check of the path that enqueues). */
  queueConnection: RedisConnection;
  /** The one connection the service's BullMQ workers share (role `worker`), opened on first call. */
  workerConnection(): RedisConnection;
  /**
   * The clients a Redlock takes its locks on (`createRedlock(runtime.lockClients())`), opened on first call:
   * one per `REDLOCK_URLS` entry, or the main Redis when there are none.
   */
  lockClients(): RedisConnection[];
  /**
   * Closes the queues and their connections, the ops server, Redis and Postgres, in that order. The
   * service closes its workers (see `closeWorker`) and background passes before this.
   */
  close(): Promise<void>;
}

/**
 * Opens a service's connections and refuses to go on when the database is behind its migrations
 * (throws `MigrationsBehindError`). On failure everything already opened is closed again.
 */
export async function openRuntime(options: OpenRuntimeOptions): Promise<ServiceRuntime> {
  const logger =
    options.logger ?? createLogger({ service: options.service, level: options.config.LOG_LEVEL });
  const registry = createMetricsRegistry(options.service);
  const db = createDb({
    url: options.config.DATABASE_URL,
    maxConnections: options.maxDbConnections ?? 10,
    applicationName: options.service,
    // One line per broken pooled connection (at most the pool size per restart); the pool replaces them.
    onConnectionError: (error) =>
      logger.warn(
        { module: 'postgres', action: 'connection', status: 'lost', err: error },
        'a Postgres connection broke; the pool replaces it',
      ),
  });
  const redis = createRedis(options.config.REDIS_URL, 'general');
  const readiness: Record<string, ReadinessCheck> = {
    postgres: () => pingDatabase(db),
    migrations: () => assertMigrationsCurrent(db),
    redis: () => pingRedis(redis),
  };
  const queueConnection = createRedis(options.config.REDIS_URL, options.queueConnectionRole ?? 'general');
  const queues = new WardenQueues({ connection: queueConnection, prefix: options.config.QUEUE_PREFIX });
  let workerConnection: RedisConnection | undefined;
  let lockClients: LockClients | undefined;
  let ops: OpsServer | undefined;
  const close = async () => {
    await queues.close().catch(() => {});
    workerConnection?.disconnect();
    lockClients?.close();
    queueConnection.disconnect();
    await ops?.close();
    redis.disconnect();
    await db.destroy();
  };
  try {
    await assertMigrationsCurrent(db);
    await waitForClusterReady(queueConnection, 10_000);
    if (options.opsPort !== undefined)
      ops = await startOpsServer({ port: options.opsPort, registry, readiness });
  } catch (error) {
    await close().catch(() => {});
    throw error;
  }
  return {
    logger,
    registry,
    db,
    redis,
    readiness,
    ...(ops ? { ops } : {}),
    queues,
    queueConnection,
    workerConnection: () => (workerConnection ??= createRedis(options.config.REDIS_URL, 'worker')),
    lockClients: () =>
      (lockClients ??= openLockClients(options.config.REDLOCK_URLS ?? [], () => redis)).clients,
    close,
  };
}
