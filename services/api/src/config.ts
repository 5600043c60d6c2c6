import { z } from 'zod';
import { commonEnvShape, parseConfig, portField } from '@warden/domain';

export const configSchema = z.object({
  ...commonEnvShape,
  /** HTTP port of the API (and of its /healthz, /readyz, /metrics). @defaultValue `3000` */
  PORT: portField(3000),
  /** Interface to bind. @defaultValue `0.0.0.0` */
  HOST: z.string().default('0.0.0.0'),
  /** Largest request body accepted; larger bodies get 413. @defaultValue `5mb` */
  MAX_BODY: z
    .string()
    .regex(/^\d+(b|kb|mb)$/i, 'a size such as 512kb or 5mb')
    .default('5mb'),
  /**
   * How long an ingest request waits for Redis before answering anyway: the events are already durable in
   * Postgres and the supervisor's poller enqueues what did not make it. @defaultValue `500`
   */
  ENQUEUE_TIMEOUT_MS: z.coerce.number().int().min(1).max(30_000).default(500),
  /** How long a verified API key is trusted before it is looked up again (revocation delay). @defaultValue `10000` */
  AUTH_CACHE_TTL_MS: z.coerce.number().int().min(0).max(300_000).default(10_000),
  /** Postgres pool size. @defaultValue `20` */
  DB_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(20),
  /** The WriteGate policy change sets are gated with at submission; validated at start-up. @defaultValue `infra/policies/writegate.yaml` */
  WRITEGATE_POLICY_FILE: z.string().min(1).default('infra/policies/writegate.yaml'),
});
export type Config = z.infer<typeof configSchema>;

/** Reads the configuration once; throws a ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return parseConfig(configSchema, env, 'api configuration');
}
