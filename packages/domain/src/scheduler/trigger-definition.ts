/**
 * What a cron trigger is (docs/scheduler.md, "Defining a trigger"): the schema `POST /v1/triggers`, the SDK
 * and the CLI validate with, its defaults, and the cross-field rules (a weight below 1 needs a fallback,
 * shadow mode needs both handlers…). Wire names are snake_case; an HTTP target's `timeoutMs` is camelCase, as
 * the SDK writes it (`timeout_ms` is accepted).
 */
import { z } from 'zod';
import { LeadWindowKindSchema } from '../lead/lead-window.js';
import { ScheduleError, validateCronExpression, validateTimeZone } from './schedule.js';

/** Queue names Warden uses itself; a handler queue may not take one. */
const RESERVED_QUEUES = new Set([
  'supervisor-events',
  'cron-fires',
  'cron-results',
  'lead-scans',
  'changesets',
]);

export const EventNameSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
    'must start with a letter or digit and use only letters, digits, "_", "." and "-"',
  );

/** A handler queue, served by an SDK trigger worker. Namespaced per tenant on the wire to Redis. */
export const HandlerQueueSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_-]*$/,
    'must start with a letter or digit and use only letters, digits, "_" and "-"',
  )
  .refine((name) => !RESERVED_QUEUES.has(name), "is one of Warden's own queues");

export const QueueTargetSchema = z.object({ queue: HandlerQueueSchema }).strict();
export type QueueTarget = z.infer<typeof QueueTargetSchema>;

export const HttpTargetSchema = z
  .object({
    /** Where the handler is; it receives the trigger context as a JSON POST. */
    url: z
      .string()
      .max(2000)
      .url()
      // zod runs this refinement even when `.url()` failed: `new URL()` must not throw on what it refused.
      .refine(
        (url) => URL.canParse(url) && /^https?:$/.test(new URL(url).protocol),
        'must be an http(s) URL',
      ),
    /** Time limit of one call (also capped by `max_duration_ms`). @defaultValue `30000` */
    timeoutMs: z.number().int().min(100).max(3_600_000).default(30_000),
    /** Extra request headers (e.g. authorization); write-only: views show them redacted. @defaultValue none */
    headers: z.record(z.string().max(200), z.string().max(4000)).optional(),
  })
  .strict();
export type HttpTarget = z.infer<typeof HttpTargetSchema>;

/**
 * A lead scan of the trigger's own tenant (docs/lead-miner.md): the call is a `scan` job on Warden's
 * `lead-scans` queue, run by the lead miner, which reports the scan's outcome back like any handler. The
 * tenant is always the trigger's, so a trigger can never scan another tenant.
 */
export const LeadScanTargetSchema = z
  .object({
    lead_scan: z
      .object({
        /** The window kind scanned (`24h`, `7d`, any `Nh`/`Nd` from 1h to 90d). */
        window: LeadWindowKindSchema,
      })
      .strict(),
  })
  .strict();
export type LeadScanTarget = z.infer<typeof LeadScanTargetSchema>;

/** `{ queue }`, `{ url, timeoutMs }` or `{ lead_scan: { window } }`. */
export const TargetSchema = z.preprocess(
  (value) => {
    // The SDK writes `timeoutMs`; snake_case callers send `timeout_ms`. Accept both, store one.
    if (
      value &&
      typeof value === 'object' &&
      !Array.isArray(value) &&
      'timeout_ms' in value &&
      !('timeoutMs' in value)
    ) {
      const { timeout_ms, ...rest } = value as Record<string, unknown>;
      return { ...rest, timeoutMs: timeout_ms };
    }
    return value;
  },
  z.union([QueueTargetSchema, HttpTargetSchema, LeadScanTargetSchema], {
    error:
      'must be { "queue": name }, { "url": "https://…", "timeoutMs": n } or { "lead_scan": { "window": "24h" } }',
  }),
);
export type Target = QueueTarget | HttpTarget | LeadScanTarget;

export function isHttpTarget(target: Target): target is HttpTarget {
  return 'url' in target;
}

export function isLeadScanTarget(target: Target): target is LeadScanTarget {
  return 'lead_scan' in target;
}

/** How a handler call reaches its target, as `cron_execution_attempts.target_kind` records it. */
export type TargetKind = 'queue' | 'http' | 'lead_scan';

/** The kind of a target and the text the attempt row names it by (queue name, URL, scan window). */
export function describeTarget(target: Target): { kind: TargetKind; name: string } {
  if ('url' in target) return { kind: 'http', name: target.url };
  if ('lead_scan' in target) return { kind: 'lead_scan', name: target.lead_scan.window };
  return { kind: 'queue', name: target.queue };
}

export const FallbackStrategySchema = z.enum(['on_failure', 'always', 'never']);
export type FallbackStrategy = z.infer<typeof FallbackStrategySchema>;
export const OverlapPolicySchema = z.enum(['skip', 'buffer_one', 'allow']);
export type OverlapPolicy = z.infer<typeof OverlapPolicySchema>;
/** `live`: the weight picks one handler per fire. `shadow`: both run, the fallback's output is served. */
export const TriggerModeSchema = z.enum(['live', 'shadow']);
export type TriggerMode = z.infer<typeof TriggerModeSchema>;

export const CircuitBreakerConfigSchema = z
  .object({
    /** Finished runs looked at. @defaultValue `10` */
    window: z.number().int().min(1).max(1000).default(10),
    /** Opens when the failure rate in the window is above this. @defaultValue `0.5` */
    failure_threshold: z.number().min(0).max(1).default(0.5),
    /** Runs the window must hold before it can open. @defaultValue `10` */
    min_runs: z.number().int().min(1).max(1000).default(10),
    /** How long it stays open before one half-open probe run decides. @defaultValue `300` */
    reset_timeout_seconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600)
      .default(300),
  })
  .strict();
export type CircuitBreakerConfig = z.infer<typeof CircuitBreakerConfigSchema>;

export const MigrationConfigSchema = z
  .object({
    /** Output fields (dotted paths) a shadow comparison looks at; empty compares the whole output. @defaultValue `[]` */
    compare_keys: z.array(z.string().min(1).max(200)).max(50).default([]),
    /** Consistency needed to raise the weight, and below which a migration rolls back. @defaultValue `0.99` */
    consistency_threshold: z.number().min(0).max(1).default(0.99),
    /** Shadow comparisons the consistency rate is taken over. @defaultValue `20` */
    consistency_window: z.number().int().min(1).max(1000).default(20),
    /** Comparisons needed before the rate is trusted (for cutover and for the red line). @defaultValue `10` */
    min_samples: z.number().int().min(1).max(1000).default(10),
    /** Consecutive agent failures that roll the migration back. @defaultValue `2` */
    rollback_after_agent_failures: z.number().int().min(1).max(100).default(2),
    /** Roll back automatically when a red line is crossed. @defaultValue `true` */
    auto_rollback: z.boolean().default(true),
  })
  .strict();
export type MigrationConfig = z.infer<typeof MigrationConfigSchema>;

const FocusSchema = z
  .union([z.string().min(1).max(200), z.array(z.string().min(1).max(200)).max(50)])
  .nullable();
const money = z.number().min(0).max(1_000_000);

/** Every field a trigger has, with its default; the shape of `POST /v1/triggers`. */
export const TriggerFieldsSchema = z
  .object({
    event_name: EventNameSchema,
    /** 5 cron fields or `@every <n>s|m|h`. */
    expression: z.string().max(200),
    /** IANA zone the cron fields, days and daily caps count in. @defaultValue `UTC` */
    timezone: z.string().max(64).default('UTC'),
    /** @defaultValue `""` */
    description: z.string().max(2000).default(''),
    /** Which skills the agent loads: a string or a list. @defaultValue `null` */
    focus: FocusSchema.default(null),
    /** Static JSON handed to every run. @defaultValue `{}` */
    payload: z.record(z.string(), z.unknown()).default({}),
    /** The agent handler. @defaultValue `null` */
    agent: TargetSchema.nullable().default(null),
    /** The deterministic fallback (often the legacy job). @defaultValue `null` */
    fallback: TargetSchema.nullable().default(null),
    /** When the fallback runs: after an agent failure, instead of the agent, or never. @defaultValue `on_failure` */
    fallback_strategy: FallbackStrategySchema.default('on_failure'),
    /** Share of runs the agent serves, 0..1. @defaultValue `1` with an agent, `0` without */
    migration_weight: z.number().min(0).max(1).optional(),
    /** @defaultValue `live` */
    mode: TriggerModeSchema.default('live'),
    /** Minimum time between the fire times of two successful runs. @defaultValue `0` */
    cooldown_seconds: z
      .number()
      .int()
      .min(0)
      .max(30 * 24 * 3600)
      .default(0),
    /** Runs (including manual ones) per day in the trigger's zone. @defaultValue no cap */
    max_daily_runs: z.number().int().min(1).max(1_000_000).nullable().default(null),
    /** Spend per day in the trigger's zone, reserved before each run and reconciled after. @defaultValue no cap */
    max_daily_cost_usd: money.nullable().default(null),
    /** The per-run estimate reserved against the daily cap; a run costing more is flagged. @defaultValue no cap */
    max_cost_per_run_usd: money.nullable().default(null),
    /** Longest a handler call may run before it counts as failed. @defaultValue the scheduler's `DEFAULT_MAX_DURATION_MS` */
    max_duration_ms: z
      .number()
      .int()
      .min(100)
      .max(24 * 3600 * 1000)
      .nullable()
      .default(null),
    circuit_breaker: CircuitBreakerConfigSchema.default(CircuitBreakerConfigSchema.parse({})),
    /** What a fire does while an earlier run is still going. @defaultValue `skip` */
    overlap_policy: OverlapPolicySchema.default('skip'),
    /** A fire later than this after its time is recorded `skipped_missed`, not run. @defaultValue `60` */
    catchup_window_seconds: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600)
      .default(60),
    /** Each scheduled run starts up to this much later (deterministic per fire) to spread load. @defaultValue `0` */
    jitter_ms: z.number().int().min(0).max(3_600_000).default(0),
    /** @defaultValue `true` */
    retry_on_failure: z.boolean().default(true),
    /** @defaultValue `3` */
    max_retries: z.number().int().min(0).max(20).default(3),
    /** First retry delay; doubles each retry, capped at one hour. @defaultValue `60` */
    retry_delay_seconds: z.number().int().min(1).max(3600).default(60),
    /** Higher fires first when many are due at once. @defaultValue `0` */
    priority: z.number().int().min(0).max(1000).default(0),
    /** @defaultValue `[]` */
    tags: z
      .array(
        z
          .string()
          .min(1)
          .max(64)
          .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits, "_", ".", ":" and "-" only'),
      )
      .max(50)
      .default([]),
    /** A disabled trigger has no job scheduler and never fires. @defaultValue `true` */
    enabled: z.boolean().default(true),
    migration: MigrationConfigSchema.default(MigrationConfigSchema.parse({})),
  })
  .strict();

/**
 * A complete, checked trigger definition: the schema above plus the rules between fields. The expression is
 * normalized and the weight resolved (1 with an agent, 0 without, unless given).
 */
export const TriggerDefinitionSchema = TriggerFieldsSchema.superRefine((value, ctx) => {
  try {
    validateCronExpression(value.expression);
  } catch (error) {
    if (!(error instanceof ScheduleError)) throw error;
    ctx.addIssue({ code: 'custom', path: ['expression'], message: error.message });
  }
  try {
    validateTimeZone(value.timezone);
  } catch (error) {
    if (!(error instanceof ScheduleError)) throw error;
    ctx.addIssue({ code: 'custom', path: ['timezone'], message: error.message });
  }
  const weight = value.migration_weight ?? (value.agent ? 1 : 0);
  if (!value.agent && !value.fallback)
    ctx.addIssue({
      code: 'custom',
      path: ['agent'],
      message: 'a trigger needs an agent or a fallback handler (or both)',
    });
  if (!value.agent && weight > 0)
    ctx.addIssue({
      code: 'custom',
      path: ['migration_weight'],
      message: 'must be 0 without an agent handler',
    });
  if (!value.fallback && weight < 1 && value.agent)
    ctx.addIssue({
      code: 'custom',
      path: ['migration_weight'],
      message: 'below 1 sends runs to the fallback, but there is no fallback handler',
    });
  if (value.mode === 'shadow' && !(value.agent && value.fallback))
    ctx.addIssue({
      code: 'custom',
      path: ['mode'],
      message: 'shadow mode runs the agent and the fallback side by side: it needs both handlers',
    });
  if (value.fallback_strategy === 'always' && !value.fallback)
    ctx.addIssue({
      code: 'custom',
      path: ['fallback_strategy'],
      message: '"always" runs the fallback every time, but there is no fallback handler',
    });
  if (
    value.max_cost_per_run_usd !== null &&
    value.max_daily_cost_usd !== null &&
    value.max_cost_per_run_usd > value.max_daily_cost_usd
  ) {
    ctx.addIssue({
      code: 'custom',
      path: ['max_cost_per_run_usd'],
      message: 'is larger than max_daily_cost_usd: no run could ever start',
    });
  }
  if (value.circuit_breaker.min_runs > value.circuit_breaker.window) {
    ctx.addIssue({
      code: 'custom',
      path: ['circuit_breaker', 'min_runs'],
      message: 'is larger than the window: the breaker could never open',
    });
  }
}).transform((value) => ({
  ...value,
  expression: safeNormalize(value.expression),
  migration_weight: value.migration_weight ?? (value.agent ? 1 : 0),
}));

function safeNormalize(expression: string): string {
  try {
    return validateCronExpression(expression);
  } catch {
    return expression;
  }
}

/** A trigger as stored and used: every field present, validated. */
export type TriggerDefinition = z.output<typeof TriggerDefinitionSchema>;
/** What a caller may send (defaults left out). */
export type TriggerDefinitionInput = z.input<typeof TriggerFieldsSchema>;

/** The same fields, every one optional and without its default (a patch names only what changes). */
function withoutDefaults<S extends z.ZodRawShape>(shape: S) {
  return Object.fromEntries(
    Object.entries(shape).map(([key, schema]) => [
      key,
      (schema instanceof z.ZodDefault ? (schema.unwrap() as z.ZodType) : (schema as z.ZodType)).optional(),
    ]),
  ) as unknown as { [K in keyof S]: z.ZodOptional<S[K] extends z.ZodDefault<infer T> ? T : S[K]> };
}

/** `PATCH /v1/triggers/:name`: any field but the name; the result is checked as a whole definition. */
export const TriggerPatchSchema = z
  .object({
    ...withoutDefaults(TriggerFieldsSchema.omit({ event_name: true }).shape),
    circuit_breaker: z.object(withoutDefaults(CircuitBreakerConfigSchema.shape)).strict().optional(),
    migration: z.object(withoutDefaults(MigrationConfigSchema.shape)).strict().optional(),
  })
  .strict();
export type TriggerPatch = z.input<typeof TriggerPatchSchema>;

/** Applies a patch to a definition; nested objects merge. Validate the result with {@link TriggerDefinitionSchema}. */
export function mergeTriggerPatch(
  current: TriggerDefinition,
  patch: z.output<typeof TriggerPatchSchema>,
): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    if (key === 'circuit_breaker' || key === 'migration')
      merged[key] = { ...(current[key] as object), ...(value as object) };
    else merged[key] = value;
  }
  // A patch that removes the agent without naming a weight means "no agent": the weight follows.
  if (patch.agent === null && patch.migration_weight === undefined) merged.migration_weight = 0;
  return merged;
}
