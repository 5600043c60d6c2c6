// The environment the supervisor-worker service reads at start-up: the schema lives here, outside the service, so the
// CLI's `warden preflight` can check a deployment's environment against it without importing the service.
import { z } from 'zod';
import { auditKeysField, commonEnvShape, portField } from '@warden/domain';

const int = (min: number, max: number, fallback: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

export const supervisorWorkerConfigSchema = z.object({
  ...commonEnvShape,
  /** Port of /healthz, /readyz and /metrics. @defaultValue `9101` */
  OPS_PORT: portField(9101),
  /** The supervisor policy file (thresholds, redlines, enforcement). @defaultValue `infra/policies/supervisor.yaml` */
  SUPERVISOR_POLICY_FILE: z.string().min(1).default('infra/policies/supervisor.yaml'),
  /**
   * How often Postgres is polled for a newly active stored policy version, in case its announcement on Redis
   * was lost (announced versions load at once). @defaultValue `2000`
   */
  POLICY_POLL_INTERVAL_MS: int(100, 60_000, 2000),
  /** Jobs taken off the queue at once; they are decided in groups. @defaultValue `256` */
  WORKER_CONCURRENCY: int(1, 5000, 256),
  /**
   * BullMQ workers in this process taking `supervisor-events` side by side, `WORKER_CONCURRENCY` split evenly
   * between them; all hand their events to the same groups. One BullMQ worker fetches its jobs one at a time and
   * starts none of them before it has fetched as many as it may hold (or the queue is empty); four fetch side by
   * side, so an event waits less before its group takes it (decision lag p99 at half load −15% in
   * `pnpm bench:supervisor`). Each holds one more Redis connection (its blocking fetch). @defaultValue `4`
   */
  EVENT_WORKERS: int(1, 64, 4),
  /** Most events decided and committed in one transaction. @defaultValue `128` */
  MAX_GROUP_SIZE: int(1, 1000, 128),
  /** Group transactions in flight at once (each holds a Postgres connection). @defaultValue `3` */
  MAX_GROUPS_IN_FLIGHT: int(1, 64, 3),
  /** A claim not completed within this is considered abandoned and released by the poller. @defaultValue `30000` */
  CLAIM_TTL_MS: int(1000, 3_600_000, 30_000),
  /** Processing attempts before an event is `dead`. @defaultValue `5` */
  MAX_ATTEMPTS: int(1, 100, 5),
  /** First retry delay after a failed attempt; doubles each attempt, capped at 5 minutes. @defaultValue `1000` */
  RETRY_BASE_DELAY_MS: int(10, 300_000, 1000),
  /** How often the poller runs. @defaultValue `10000` */
  POLL_INTERVAL_MS: int(100, 3_600_000, 10_000),
  /** A pending row older than this (and not re-enqueued within it) is re-enqueued. @defaultValue `5000` */
  POLL_GRACE_MS: int(0, 3_600_000, 5000),
  /**
   * Rows the poller re-enqueues in its first take of a pass (and claims it releases per pass); takes that come
   * back full double, up to POLL_MAX_BATCH_SIZE, while a backlog drains. @defaultValue `50`
   */
  POLL_BATCH_SIZE: int(1, 10_000, 50),
  /** Largest take of the poller while it drains a backlog (e.g. after Redis was away). @defaultValue `1000` */
  POLL_MAX_BATCH_SIZE: int(1, 10_000, 1000),
  /**
   * The poller adds jobs only while the supervisor queue holds fewer than this not yet taken, so a backlog is
   * fed as fast as it is decided, and rows do not wait in the queue past POLL_GRACE_MS. @defaultValue `4000`
   */
  POLL_MAX_QUEUED_JOBS: int(1, 1_000_000, 4000),
  /** How often open gates past their deadline are expired (their tasks blocked). @defaultValue `30000` */
  GATE_EXPIRY_INTERVAL_MS: int(100, 3_600_000, 30_000),
  /** How long before its deadline an open gate's "expires soon" notification goes out. @defaultValue `3600000` (1 h) */
  GATE_EXPIRY_WARN_BEFORE_MS: int(0, 604_800_000, 3_600_000),
  /**
   * Days the event archive keeps decided events with the context their policy saw (the input of backtests);
   * whole days are dropped past it. @defaultValue `30`
   */
  ARCHIVE_RETENTION_DAYS: int(1, 3650, 30),
  /** Days of archive partitions created ahead of time. @defaultValue `7` */
  ARCHIVE_PARTITIONS_AHEAD: int(1, 366, 7),
  /** How often the archive's partitions are rotated. @defaultValue `3600000` */
  ARCHIVE_MAINTENANCE_INTERVAL_MS: int(1000, 86_400_000, 3_600_000),
  /** Completed inbox rows are kept this many days (the event archive keeps what replays need). @defaultValue `7` */
  INBOX_RETENTION_DAYS: int(1, 3650, 7),
  /** Worker threads that run the policies (each event's policy is stopped past its CPU budget). @defaultValue `1` */
  POLICY_THREADS: int(1, 16, 1),
  /** Postgres pool size. @defaultValue `8` */
  DB_POOL_SIZE: int(1, 200, 8),
  /**
   * Key(s) the poller signs audit anchors with (comma-separated: the first signs, all verify earlier anchors);
   * at least 32 characters each. Unset: the poller makes no anchors. @defaultValue none
   */
  WARDEN_AUDIT_KEY: auditKeysField,
  /** How often the poller anchors the audit chains that grew (with WARDEN_AUDIT_KEY). @defaultValue `60000` */
  AUDIT_ANCHOR_INTERVAL_MS: int(1000, 86_400_000, 60_000),
});
/** The supervisor-worker configuration as parsed from its environment. */
export type SupervisorWorkerEnvConfig = z.infer<typeof supervisorWorkerConfigSchema>;
