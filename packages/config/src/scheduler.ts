// The environment the scheduler service reads at start-up: the schema lives here, outside the service, so the
// CLI's `warden preflight` can check a deployment's environment against it without importing the service.
import { z } from 'zod';
import { commonEnvShape, egressEnvShape, portField } from '@warden/domain';

const int = (min: number, max: number, fallback: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

export const schedulerConfigSchema = z.object({
  ...commonEnvShape,
  /** Port of /healthz, /readyz, /health and /metrics. @defaultValue `9102` */
  OPS_PORT: portField(9102),
  /**
   * Jobs taken off `cron-fires` at once; fires among them are governed in groups, so a burst of due triggers
   * is taken in whole rather than trickling in. @defaultValue `1000`
   */
  FIRE_CONCURRENCY: int(1, 10_000, 1000),
  /**
   * BullMQ workers in this process taking `cron-fires` side by side, `FIRE_CONCURRENCY` split evenly between them.
   * One BullMQ worker fetches its jobs one at a time and starts none of them before it has fetched as many as it
   * may hold (or the queue is empty): alone, it took ~0.8 s to pick up 1,000 fires due at once before the first
   * was governed; eight fetch side by side and hand theirs over sooner (`pnpm bench:scheduler`). Each holds one
   * more Redis connection (its blocking fetch). @defaultValue `8`
   */
  FIRE_WORKERS: int(1, 64, 8),
  /** Most fires governed in one transaction (measured: fewer, larger groups carry a burst best). @defaultValue `500` */
  FIRE_BATCH_SIZE: int(1, 5000, 500),
  /** Fire transactions at once (each holds a Postgres connection). @defaultValue `2` */
  FIRE_BATCHES_IN_FLIGHT: int(1, 64, 2),
  /** Handler reports recorded at once. @defaultValue `16` */
  RESULT_CONCURRENCY: int(1, 1000, 16),
  /** Postgres pool size. @defaultValue `20` */
  DB_POOL_SIZE: int(1, 200, 20),
  /** How often every trigger's job scheduler is checked against Postgres (changes are applied at once anyway). @defaultValue `60000` */
  RECONCILE_INTERVAL_MS: int(1000, 3_600_000, 60_000),
  /**
   * `on`: every tenant gets the built-in lead-scan triggers (`lead-scan-24h`, `lead-scan-7d`) once, at start
   * and on every periodic reconcile; `off`: none are created (those that exist stay: pause or delete them).
   * @defaultValue `on`
   */
  LEAD_SCAN_TRIGGERS: z.enum(['on', 'off']).default('on'),
  /** How often the sweeper looks for runs whose jobs were lost. @defaultValue `5000` */
  SWEEP_INTERVAL_MS: int(100, 3_600_000, 5000),
  /** How long past due a run must be before the sweeper moves it on. @defaultValue `5000` */
  SWEEP_GRACE_MS: int(0, 3_600_000, 5000),
  /** Rows per kind the sweeper handles per pass. @defaultValue `100` */
  SWEEP_BATCH_SIZE: int(1, 10_000, 100),
  /** A handler call's time limit when its trigger sets no `max_duration_ms`. @defaultValue `900000` (15 min) */
  DEFAULT_MAX_DURATION_MS: int(100, 24 * 3_600_000, 900_000),
  ...egressEnvShape,
  /** Replaced by `EGRESS_ALLOWED_HOSTS`; refused so that a deployment still setting it learns why. */
  HTTP_TARGET_ALLOWED_HOSTS: z
    .undefined({
      error:
        'HTTP_TARGET_ALLOWED_HOSTS was replaced by EGRESS_ALLOWED_HOSTS (and EGRESS_ALLOWED_CIDRS): rename it',
    })
    .optional(),
  /** How long an HTTP target's breaker stays open before one call may try again. @defaultValue `30000` */
  HTTP_BREAKER_RESET_MS: int(100, 3_600_000, 30_000),
  /** A Postgres or Redis round trip slower than this makes `/health` say `degraded`. @defaultValue `250` */
  HEALTH_SLOW_MS: int(1, 60_000, 250),
  /** On stop, how long to wait for HTTP handler calls in flight (their deadlines cover the rest). @defaultValue `10000` */
  STOP_GRACE_MS: int(0, 120_000, 10_000),
});
/** The scheduler configuration as parsed from its environment. */
export type SchedulerEnvConfig = z.infer<typeof schedulerConfigSchema>;
