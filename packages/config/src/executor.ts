// The environment the executor service reads at start-up: the schema lives here, outside the service, so the
// CLI's `warden preflight` can check a deployment's environment against it without importing the service.
import { z } from 'zod';
import {
  commonEnvShape,
  egressEnvShape,
  portField,
  TenantIdSchema,
  WorkspaceNameSchema,
} from '@warden/domain';

const int = (min: number, max: number, fallback: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

/** One workspace: a root directory, optionally reserved for some tenants. */
export const WorkspaceEntrySchema = z.union([
  z.string().min(1),
  z
    .object({
      root: z.string().min(1),
      /** Tenants whose change sets may name this workspace. @defaultValue every tenant */
      tenants: z.array(TenantIdSchema).min(1).optional(),
    })
    .strict(),
]);
/** `{ "<name>": "/abs/root" }` or `{ "<name>": { "root": "/abs/root", "tenants": ["acme"] } }`. */
export const WorkspacesSchema = z.record(WorkspaceNameSchema, WorkspaceEntrySchema);
export type WorkspacesConfig = z.infer<typeof WorkspacesSchema>;

/** A comma-separated list, trimmed, empty entries dropped. */
const nameList = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((list) =>
      list
        .split(',')
        .map((name) => name.trim())
        .filter((name) => name !== ''),
    );

/** Never passed through to a verification: set by the sandbox itself, or the executor's own connections and secrets. */
const SANDBOX_RESERVED_ENV =
  /^(PATH|HOME|TMPDIR|DATABASE_URL|REDIS_URL|TEST_DATABASE_URL|TEST_REDIS_URL|WARDEN_.*|EXECUTOR_.*)$/;

const workspacesJson = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: `not valid JSON: ${(error as Error).message}` });
      return z.NEVER;
    }
  })
  .pipe(WorkspacesSchema);

export const executorConfigSchema = z.object({
  ...commonEnvShape,
  ...egressEnvShape,
  /** Port of /healthz, /readyz and /metrics. @defaultValue `9104` */
  OPS_PORT: portField(9104),
  /** The WriteGate policy, validated at start-up; the executor re-runs the gate with it before writing. @defaultValue `infra/policies/writegate.yaml` */
  WRITEGATE_POLICY_FILE: z.string().min(1).default('infra/policies/writegate.yaml'),
  /**
   * How often Postgres is polled for a tenant's newly active stored WriteGate policy version, in case its announcement
   * on Redis was lost (announced versions load at once). @defaultValue `2000`
   */
  POLICY_POLL_INTERVAL_MS: int(100, 60_000, 2000),
  /**
   * Named workspace roots as JSON: `{ "app": "/srv/app" }` or `{ "app": { "root": "/srv/app", "tenants": ["acme"] } }`.
   * A change set names its workspace; names not listed here are refused. @defaultValue `{}` (none)
   */
  EXECUTOR_WORKSPACES: workspacesJson.default({}),
  /** A YAML or JSON file with the same shape as `EXECUTOR_WORKSPACES`, merged over it. @defaultValue none */
  EXECUTOR_WORKSPACES_FILE: z.string().min(1).optional(),
  /** Change sets executed at once (on different workspaces; one workspace has one writer). @defaultValue `4` */
  EXECUTOR_CONCURRENCY: int(1, 64, 4),
  /** Workspace lock time-to-live; extended every third of it while the executor works. @defaultValue `30000` */
  EXECUTOR_LOCK_TTL_MS: int(1000, 600_000, 30_000),
  /** How long a job waits for a busy workspace before it is put back on the queue (delayed). @defaultValue `30000` */
  EXECUTOR_LOCK_WAIT_MS: int(0, 600_000, 30_000),
  /** How long taking a fencing token waits for a holder that is mid-write. @defaultValue `5000` */
  EXECUTOR_FENCE_WAIT_MS: int(100, 120_000, 5000),
  /** How long a duplicate waits for an identical change set that is running before it is put back on the queue. @defaultValue `30000` */
  EXECUTOR_DUPLICATE_WAIT_MS: int(0, 600_000, 30_000),
  /** Idempotency records are kept this long after their execution ends (at least 24 h). @defaultValue `48` */
  EXECUTOR_IDEMPOTENCY_RETENTION_HOURS: int(24, 24 * 365, 48),
  /** Upper bound on any verification command or health check, whatever the plan asks. @defaultValue `600000` */
  EXECUTOR_MAX_COMMAND_TIMEOUT_MS: int(1000, 3_600_000, 600_000),
  /**
   * Environment variables every verification gets from the executor's environment, besides its own `env` list
   * in the policy. PATH, HOME, TMPDIR and the executor's connections and secrets are refused: the sandbox sets
   * the first three itself and never passes the others. @defaultValue `LANG,LC_ALL,TZ`
   */
  EXECUTOR_COMMAND_ENV: nameList('LANG,LC_ALL,TZ').pipe(
    z.array(
      z.string().refine((name) => !SANDBOX_RESERVED_ENV.test(name), {
        message: "is set by the sandbox or is the executor's own secret: it cannot be passed through",
      }),
    ),
  ),
  /**
   * How verifications are isolated. `auto`: with bubblewrap when it works here, else with a clean environment
   * and resource limits only (logged as degraded at start-up and reported on each check); `bwrap`: refuse to
   * start without working bubblewrap (set this in production); `none`: never use it. @defaultValue `auto`
   */
  EXECUTOR_SANDBOX: z.enum(['auto', 'bwrap', 'none']).default('auto'),
  /** The PATH verifications get (never the executor's own). @defaultValue `/usr/local/bin:/usr/bin:/bin` */
  EXECUTOR_SANDBOX_PATH: z
    .string()
    .min(1)
    .default('/usr/local/bin:/usr/bin:/bin')
    .refine(
      (path) => path.split(':').every((dir) => dir.startsWith('/')),
      'every directory must be absolute',
    ),
  /**
   * Directories mounted read-only inside bubblewrap (absent ones are skipped; the PATH directories are added).
   * The workspace is the only writable mount, `/tmp` a private tmpfs. @defaultValue `/usr,/bin,/sbin,/lib,/lib32,/lib64,/etc,/opt`
   */
  EXECUTOR_SANDBOX_READONLY: nameList('/usr,/bin,/sbin,/lib,/lib32,/lib64,/etc,/opt').pipe(
    z.array(z.string().startsWith('/', 'must be an absolute directory')),
  ),
  /**
   * The unprivileged user verifications run as, `uid:gid` or a user name from /etc/passwd. Only an executor
   * running as root can switch; one running as root without it reports the sandbox as degraded.
   * @defaultValue none (the executor's own user)
   */
  EXECUTOR_RUN_AS: z
    .string()
    .regex(/^(\d+:\d+|[a-z_][a-z0-9_-]*)$/, 'uid:gid (numbers) or a user name')
    .optional(),
  /** CPU seconds a verification may use (RLIMIT_CPU through prlimit); `0` = no limit. @defaultValue `600` */
  EXECUTOR_SANDBOX_CPU_SECONDS: int(0, 86_400, 600),
  /** Address space of each verification process in MiB (RLIMIT_AS); `0` = no limit. @defaultValue `4096` */
  EXECUTOR_SANDBOX_MEMORY_MB: int(0, 1_048_576, 4096),
  /** Processes of the verification's user (RLIMIT_NPROC; root ignores it); `0` = no limit. @defaultValue `256` */
  EXECUTOR_SANDBOX_MAX_PROCESSES: int(0, 1_000_000, 256),
  /** Largest file a verification may write, in MiB (RLIMIT_FSIZE); `0` = no limit. @defaultValue `1024` */
  EXECUTOR_SANDBOX_MAX_FILE_MB: int(0, 1_048_576, 1024),
  /** Command output kept per check (the last bytes). @defaultValue `16384` */
  EXECUTOR_OUTPUT_LIMIT_BYTES: int(256, 10 * 1024 * 1024, 16_384),
  /** How long an HTTP health check's circuit stays open before a trial request. @defaultValue `30000` */
  EXECUTOR_BREAKER_RESET_MS: int(100, 3_600_000, 30_000),
  /** How often lost jobs are re-enqueued, abandoned journals recovered and old records pruned. @defaultValue `10000` */
  EXECUTOR_POLL_INTERVAL_MS: int(100, 3_600_000, 10_000),
  /** How often change sets past their approval deadline are rejected. @defaultValue `30000` */
  APPROVAL_EXPIRY_INTERVAL_MS: int(100, 3_600_000, 30_000),
  /** How long before its deadline a waiting approval's "expires soon" notification goes out. @defaultValue `3600000` (1 h) */
  APPROVAL_EXPIRY_WARN_BEFORE_MS: int(0, 604_800_000, 3_600_000),
  /** An executable change set not started this long after it was queued is enqueued again. @defaultValue `60000` */
  EXECUTOR_REQUEUE_GRACE_MS: int(100, 86_400_000, 60_000),
  /** Backups of finished change sets are kept this many days. @defaultValue `7` */
  EXECUTOR_BACKUP_RETENTION_DAYS: int(1, 3650, 7),
  /** Files written at once during apply and rollback. @defaultValue `16` */
  EXECUTOR_WRITE_CONCURRENCY: int(1, 256, 16),
  /** Names this executor in locks, journals and logs. @defaultValue `<hostname>-<pid>` */
  EXECUTOR_ID: z.string().min(1).max(200).optional(),
  /** Fault injection for chaos tests: wait this long before each rename of the apply. Keep 0 in production. @defaultValue `0` */
  EXECUTOR_FAULT_WRITE_DELAY_MS: int(0, 60_000, 0),
  /** Postgres pool size. @defaultValue `8` */
  DB_POOL_SIZE: int(1, 200, 8),
});
/** The executor configuration as parsed from its environment. */
export type ExecutorEnvConfig = z.infer<typeof executorConfigSchema>;
