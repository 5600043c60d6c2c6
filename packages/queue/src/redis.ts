import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { parseRedisClusterUrl, type RedisClusterTarget } from '@warden/domain';

/**
 * A connection to Warden's Redis: one server, or a Redis Cluster when `REDIS_URL` is a `redis+cluster://` URL.
 * BullMQ, Redlock and every command Warden sends accept either; each key Warden uses is a single key or shares
 * its hash tag with the keys it is used with (see `queueKeyPrefix`).
 */
export type RedisConnection = Redis | Cluster;

export type RedisRole =
  /** A BullMQ Worker's connection: blocking commands, must retry forever (`maxRetriesPerRequest: null`). */
  | 'worker'
  /**
   * A producer on a request path: fail fast when Redis is away (no offline queue, one retry), so an HTTP
   * request is never held hostage by Redis. Postgres is the durable record; the poller re-enqueues.
   */
  | 'producer'
  /** Everything else (locks, health checks, admin). */
  | 'general';

/**
 * Creates an ioredis client configured for its role: a `Redis`, or a `Cluster` for a `redis+cluster://` URL
 * (the role's options then apply to every node). The caller owns it and must `quit()` or `disconnect()` it.
 */
export function createRedis(url: string, role: RedisRole, overrides: RedisOptions = {}): RedisConnection {
  const base: RedisOptions = {
    lazyConnect: false,
    connectTimeout: 5000,
    // Reconnect with a capped backoff forever; a service rides out a Redis restart without crashing.
    retryStrategy: (times) => Math.min(times * 200, 2000),
  };
  const byRole: Record<RedisRole, RedisOptions> = {
    worker: { maxRetriesPerRequest: null, enableReadyCheck: true },
    producer: { maxRetriesPerRequest: 1, enableOfflineQueue: false },
    general: { maxRetriesPerRequest: 3 },
  };
  const options = { ...base, ...byRole[role], ...overrides };
  const cluster = parseRedisClusterUrl(url);
  const client = cluster ? createCluster(cluster, options) : new Redis(url, options);
  // Connection errors surface as failed commands and readiness checks; an unhandled 'error' would crash.
  client.on('error', () => {});
  return client;
}

function createCluster(target: RedisClusterTarget, options: RedisOptions): Cluster {
  // The options that belong to the cluster as a whole move up; the rest apply to each node's connection.
  const { lazyConnect, enableOfflineQueue, enableReadyCheck, retryStrategy, ...nodeOptions } = options;
  const clusterOptions: ClusterOptions = {
    redisOptions: {
      ...nodeOptions,
      ...(target.username ? { username: target.username } : {}),
      ...(target.password ? { password: target.password } : {}),
      ...(target.tls ? { tls: {} } : {}),
    },
    ...(retryStrategy ? { clusterRetryStrategy: (times: number) => retryStrategy(times) ?? null } : {}),
    // A failover moves slots; give the cluster time to settle instead of failing the command at once.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 500,
  };
  if (lazyConnect !== undefined) clusterOptions.lazyConnect = lazyConnect;
  if (enableOfflineQueue !== undefined) clusterOptions.enableOfflineQueue = enableOfflineQueue;
  if (enableReadyCheck !== undefined) clusterOptions.enableReadyCheck = enableReadyCheck;
  return new Cluster(target.nodes, clusterOptions);
}

/**
 * Waits, at most `timeoutMs`, until a Redis Cluster connection is `ready` (a single server: at once). BullMQ
 * takes a cluster's `connect` state, which comes first, for ready: a queue opened in between has its first
 * command refused when the connection has no offline queue (the API's producer), so a service waits for its
 * cluster before it takes work. Never throws: a cluster not ready in time is left to its retries (and a queue
 * whose set-up failed is replaced: see `WardenQueues.get`).
 */
export async function waitForClusterReady(connection: RedisConnection, timeoutMs: number): Promise<void> {
  if (!connection.isCluster || connection.status === 'ready') return;
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      connection.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    connection.once('ready', done);
  });
}
