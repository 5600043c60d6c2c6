import type { Redis } from 'ioredis';
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
import { createRedis, pingRedis } from '@warden/queue';

export interface RuntimeConfig {
  DATABASE_URL: string;
  REDIS_URL: string;
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
}

/** What a started service holds: its logger, metrics, Postgres and a general-purpose Redis client. */
export interface ServiceRuntime {
  logger: Logger;
  registry: Registry;
  db: Db;
  redis: Redis;
  readiness: Record<string, ReadinessCheck>;
  ops?: OpsServer;
  /** Closes the ops server, Redis and Postgres, in that order. Workers and queues close before this. */
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
  });
  const redis = createRedis(options.config.REDIS_URL, 'general');
  const readiness: Record<string, ReadinessCheck> = {
    postgres: () => pingDatabase(db),
    migrations: () => assertMigrationsCurrent(db),
    redis: () => pingRedis(redis),
  };
  let ops: OpsServer | undefined;
  const close = async () => {
    await ops?.close();
    redis.disconnect();
    await db.destroy();
  };
  try {
    await assertMigrationsCurrent(db);
    if (options.opsPort !== undefined)
      ops = await startOpsServer({ port: options.opsPort, registry, readiness });
  } catch (error) {
    await close().catch(() => {});
    throw error;
  }
  return { logger, registry, db, redis, readiness, ...(ops ? { ops } : {}), close };
}
