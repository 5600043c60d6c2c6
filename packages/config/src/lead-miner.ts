// The environment the lead-miner service reads at start-up: the schema lives here, outside the service, so the
// CLI's `warden preflight` can check a deployment's environment against it without importing the service.
import { z } from 'zod';
import { commonEnvShape, portField } from '@warden/domain';

const int = (min: number, max: number, fallback: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);
/** A setting earlier versions read; refused so a deployment still setting it learns where it went. */
const movedToTriggers = (name: string) =>
  z
    .undefined({
      error: `${name} is no longer read: the default lead scans are the scheduler's built-in triggers lead-scan-24h and lead-scan-7d; change, pause or delete them with \`warden triggers\` (docs/lead-miner.md, "Scheduling")`,
    })
    .optional();

export const leadMinerConfigSchema = z.object({
  ...commonEnvShape,
  /** Port of /healthz, /readyz and /metrics. @defaultValue `9103` */
  OPS_PORT: portField(9103),
  /** The rules file (thresholds, severities), validated at start-up. @defaultValue `infra/policies/lead-rules.yaml` */
  LEAD_RULES_FILE: z.string().min(1).default('infra/policies/lead-rules.yaml'),
  /**
   * How often Postgres is polled for a tenant's newly active stored lead rules version, in case its announcement
   * on Redis was lost (announced versions load at once). @defaultValue `2000`
   */
  POLICY_POLL_INTERVAL_MS: int(100, 60_000, 2000),
  /** Scans run at once by this process (each takes a Postgres connection or two while it reads). @defaultValue `1` */
  WORKER_CONCURRENCY: int(1, 16, 1),
  /** Lifetime of the single-flight lock; extended every third of it while a scan runs. @defaultValue `30000` */
  LEAD_SCAN_LOCK_TTL_MS: int(1000, 600_000, 30_000),
  /** Replaced by the scheduler's built-in trigger `lead-scan-24h`; refused. */
  LEAD_SCHEDULE_24H: movedToTriggers('LEAD_SCHEDULE_24H'),
  /** Replaced by the scheduler's built-in trigger `lead-scan-7d`; refused. */
  LEAD_SCHEDULE_7D: movedToTriggers('LEAD_SCHEDULE_7D'),
  /** Replaced by the built-in triggers' own `timezone`; refused. */
  LEAD_SCHEDULE_TZ: movedToTriggers('LEAD_SCHEDULE_TZ'),
  /** Postgres pool size. @defaultValue `4` */
  DB_POOL_SIZE: int(2, 100, 4),
});
/** The lead-miner configuration as parsed from its environment. */
export type LeadMinerEnvConfig = z.infer<typeof leadMinerConfigSchema>;
