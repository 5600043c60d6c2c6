import { z } from 'zod';
import { redisUrlProblem } from './redis-url.js';

/**
 * Environment fields every Warden process reads. Services compose these into their own `config.ts`
 * schema so that names and defaults are the same everywhere.
 */
export const commonEnvShape = {
  /** Postgres connection string. @defaultValue `postgres://postgres@127.0.0.1:5432/warden` */
  DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/warden'),
  /**
   * Redis: one server (`redis://`, `rediss://`) or a Redis Cluster,
   * `redis+cluster://[user:password@]host:port,host:port…` (`rediss+cluster://` for TLS), which gives every
   * queue a hash tag of its own (docs/deploy.md, "Redis Cluster").
   * @defaultValue `redis://127.0.0.1:6379`
   */
  REDIS_URL: z
    .string()
    .default('redis://127.0.0.1:6379')
    .superRefine((url, ctx) => {
      const problem = redisUrlProblem(url);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  /**
   * Independent Redis servers to take locks on (Redlock needs a majority of them), comma-separated
   * `redis://` / `rediss://` URLs; an odd number, 3 or 5. Empty: locks are taken on `REDIS_URL`.
   * @defaultValue empty (the main Redis)
   */
  REDLOCK_URLS: z
    .string()
    .default('')
    .transform((value, ctx) => {
      const urls = value
        .split(',')
        .map((url) => url.trim())
        .filter((url) => url !== '');
      for (const url of urls) {
        const problem = redisUrlProblem(url, { allowCluster: false });
        if (problem) ctx.addIssue({ code: 'custom', message: `"${redactPassword(url)}" ${problem}` });
      }
      if (new Set(urls).size !== urls.length)
        ctx.addIssue({ code: 'custom', message: 'lists the same Redis twice (each node is one vote)' });
      return urls;
    }),
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

/** `url` with its password masked, for error messages. */
function redactPassword(url: string): string {
  return url.replace(/^([a-z+]+:\/\/[^:@/]*:)[^@/]*@/i, '$1***@');
}
