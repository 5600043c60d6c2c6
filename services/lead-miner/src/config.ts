import { z } from 'zod';
import {
  commonEnvShape,
  parseConfig,
  portField,
  validateCronExpression,
  validateTimeZone,
} from '@warden/domain';

const int = (min: number, max: number, fallback: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);
/**
 * A cron pattern by the triggers' own rules (strictly 5 fields, steps within their range), or `off`: the same
 * parser validates both, so a schedule that passes here behaves as it would on a trigger.
 */
const schedule = (fallback: string) =>
  z
    .string()
    .trim()
    .default(fallback)
    .superRefine((value, ctx) => {
      if (value === 'off') return;
      try {
        validateCronExpression(value);
        if (value.startsWith('@')) throw new Error('"@every" is for triggers; give 5 cron fields or "off"');
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
    });

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
    .default('UTC')
    .superRefine((zone, ctx) => {
      try {
        validateTimeZone(zone);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
    }),
  /** Postgres pool size. @defaultValue `4` */
  DB_POOL_SIZE: int(2, 100, 4),
});
export type Config = z.infer<typeof configSchema>;

/** Reads the configuration once; throws a ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return parseConfig(configSchema, env, 'lead-miner configuration');
}
