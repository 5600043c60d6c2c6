import { z } from 'zod';

/**
 * Environment fields every Warden process reads. Services compose these into their own `config.ts`
 * schema so that names and defaults are the same everywhere.
 */
export const commonEnvShape = {
  /** Postgres connection string. @defaultValue `postgres://postgres@127.0.0.1:5432/warden` */
  DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/warden'),
  /** Redis connection string. @defaultValue `redis://127.0.0.1:6379` */
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Prefix of every BullMQ key; lets several Warden installs (or tests) share one Redis. @defaultValue `warden` */
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, "_" and "-" only')
    .default('warden'),
  /** pino level. @defaultValue `info` */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

/** A TCP port; `0` asks the OS for a free one (tests). */
export const portField = (defaultPort: number) =>
  z.coerce.number().int().min(0).max(65535).default(defaultPort);
