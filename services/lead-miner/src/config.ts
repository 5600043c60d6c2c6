import { z } from 'zod';
import { commonEnvShape, parseConfig, portField } from '@warden/domain';

const int = (min: number, max: number, fallback: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);
/** A 5-field cron pattern, or `off`. A 6-field one is refused rather than read with a leading seconds field. */
const schedule = (fallback: string) =>
  z
    .string()
    .trim()
    .regex(/^(off|\S+(\s+\S+){4})$/, 'a 5-field cron pattern such as "0 2 * * *", or "off"')
    .default(fallback);

export const configSchema = z.object({
  ...commonEnvShape,
  /** Port of /healthz, /readyz and /metrics. @defaultValue `9103` */
  OPS_PORT: portField(9103),
  /** The rules file (thresholds, severities), validated at start-up. @defaultValue `infra/policies/lead-rules.yaml` */
  LEAD_RULES_FILE: z.string().min(1).default('infra/policies/lead-rules.yaml'),
  /** Scans run at once by this process (each takes a Postgres connection or two while it reads). @defaultValue `1` */
  WORKER_CONCURRENCY: int(1, 16, 1),
  /** Lifetime of the single-flight lock; extended every third of it while a scan runs. @defaultValue `30000` */
  LEAD_SCAN_LOCK_TTL_MS: int(1000, 600_000, 30_000),
  /** The scheduled 24h scan of every tenant (a BullMQ job scheduler), or `off`. @defaultValue `0 2 * * *` */
  LEAD_SCHEDULE_24H: schedule('0 2 * * *'),
  /** The scheduled 7d scan of every tenant, or `off`. @defaultValue `0 3 * * 1` */
  LEAD_SCHEDULE_7D: schedule('0 3 * * 1'),
  /** Time zone of the schedules (IANA). @defaultValue `UTC` */
  LEAD_SCHEDULE_TZ: z
    .string()
    .refine(
      (zone) => {
        try {
          new Intl.DateTimeFormat('en-US', { timeZone: zone });
          return true;
        } catch {
          return false;
        }
      },
      { message: 'an IANA time zone such as UTC or Europe/Paris' },
    )
    .default('UTC'),
  /** Postgres pool size. @defaultValue `4` */
  DB_POOL_SIZE: int(2, 100, 4),
});
export type Config = z.infer<typeof configSchema>;

/** Reads the configuration once; throws a ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return parseConfig(configSchema, env, 'lead-miner configuration');
}
