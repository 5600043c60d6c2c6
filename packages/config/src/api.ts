// The environment the api service reads at start-up: the schema lives here, outside the service, so the
// CLI's `warden preflight` can check a deployment's environment against it without importing the service.
import { z } from 'zod';
import { commonEnvShape, egressEnvShape, portField } from '@warden/domain';

export const apiConfigSchema = z.object({
  ...commonEnvShape,
  ...egressEnvShape,
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
  /**
   * How often Postgres is polled for a tenant's newly active stored WriteGate policy version, in case its announcement
   * on Redis was lost (announced versions load at once). @defaultValue `2000`
   */
  POLICY_POLL_INTERVAL_MS: z.coerce.number().int().min(100).max(60_000).default(2000),
  /**
   * HMAC key of the console's session cookies (at least 32 characters); replicas of the API must share one.
   * @defaultValue a random key per process (console sessions end when the API restarts)
   */
  CONSOLE_SESSION_SECRET: z.string().min(32, 'at least 32 characters').optional(),
  /** How long a console session lasts after sign-in. @defaultValue `28800000` (8 hours) */
  CONSOLE_SESSION_TTL_MS: z.coerce.number().int().min(60_000).max(604_800_000).default(28_800_000),
  /**
   * The API's address as people reach it: links in notifications (Slack buttons, `console_path` in webhooks)
   * start with it. @defaultValue `http://localhost:3000`
   */
  PUBLIC_BASE_URL: z.url({ protocol: /^https?$/ }).default('http://localhost:3000'),
  /**
   * Bull Board (`/admin/queues`, platform operators' keys only) shows queues and jobs but cannot retry, clean,
   * pause or obliterate anything. @defaultValue `true`
   */
  BULL_BOARD_READ_ONLY: z.stringbool().default(true),
  /** Run the notifier (fan-out of the outbox, delivery to channels) in this process. @defaultValue `true` */
  NOTIFIER_ENABLED: z.stringbool().default(true),
  /** How often the notifier fans new notifications out to channels. @defaultValue `1000` */
  NOTIFIER_INTERVAL_MS: z.coerce.number().int().min(50).max(3_600_000).default(1000),
  /** Attempts per delivery before it is `failed` in the delivery log. @defaultValue `5` */
  NOTIFIER_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(5),
  /** The first retry's delay; each next one doubles. @defaultValue `2000` */
  NOTIFIER_BACKOFF_MS: z.coerce.number().int().min(1).max(3_600_000).default(2000),
  /** One delivery request's time limit. @defaultValue `5000` */
  NOTIFIER_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(5000),
  /** Mark console cookies `Secure` (set it when TLS terminates in front of the API). @defaultValue `false` */
  CONSOLE_SECURE_COOKIES: z.stringbool().default(false),
  /**
   * The supervisor policy a tenant's stored versions start from (stored as version 1 at its first push);
   * validated at start-up. Keep it the same file the supervisor-worker starts with.
   * @defaultValue `infra/policies/supervisor.yaml`
   */
  SUPERVISOR_POLICY_FILE: z.string().min(1).default('infra/policies/supervisor.yaml'),
  /** The lead rules a tenant's stored versions start from, as above. @defaultValue `infra/policies/lead-rules.yaml` */
  LEAD_RULES_FILE: z.string().min(1).default('infra/policies/lead-rules.yaml'),
});
/** The api configuration as parsed from its environment. */
export type ApiEnvConfig = z.infer<typeof apiConfigSchema>;
