import { Redis, type RedisOptions } from 'ioredis';

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

/** Creates an ioredis client configured for its role. The caller owns it and must `quit()` it. */
export function createRedis(url: string, role: RedisRole, overrides: RedisOptions = {}): Redis {
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
  const client = new Redis(url, { ...base, ...byRole[role], ...overrides });
  // Connection errors surface as failed commands and readiness checks; an unhandled 'error' would crash.
  client.on('error', () => {});
  return client;
}
