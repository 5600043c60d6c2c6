/**
 * Triggers and their status as the API, the CLI and the SDK show them. The same zod schemas generate the
 * OpenAPI document, so the document cannot drift from the answers.
 */
import { z } from 'zod';
import { ExecutionStatusSchema, ExecutionViewSchema, SkipReasonSchema } from './execution.js';
import {
  CircuitBreakerConfigSchema,
  FallbackStrategySchema,
  MigrationConfigSchema,
  OverlapPolicySchema,
  TriggerModeSchema,
} from './trigger-definition.js';

/** Handlers with their HTTP headers redacted: headers are write-only. */
export const TargetViewSchema = z.union([
  z.object({ queue: z.string() }),
  z.object({ url: z.string(), timeoutMs: z.number(), headers: z.record(z.string(), z.string()).optional() }),
  z.object({ lead_scan: z.object({ window: z.string() }) }),
]);

/** A paused trigger: who paused it, when, and why (`circuit_breaker` pauses resume on a successful probe). */
export const PauseViewSchema = z.object({
  source: z.enum(['manual', 'circuit_breaker']),
  note: z.string().nullable(),
  paused_at: z.string(),
  paused_by: z.string().nullable(),
});

export const BreakerViewSchema = z.object({
  state: z.enum(['closed', 'open', 'half_open']),
  opened_at: z.string().nullable(),
  reason: z.string().nullable(),
  probe_execution_id: z.string().nullable(),
});

export const TriggerViewSchema = z.object({
  trigger_id: z.string(),
  tenant_id: z.string(),
  event_name: z.string(),
  expression: z.string(),
  timezone: z.string(),
  description: z.string(),
  focus: z.union([z.string(), z.array(z.string())]).nullable(),
  payload: z.record(z.string(), z.unknown()),
  agent: TargetViewSchema.nullable(),
  fallback: TargetViewSchema.nullable(),
  fallback_strategy: FallbackStrategySchema,
  migration_weight: z.number(),
  mode: TriggerModeSchema,
  cooldown_seconds: z.number(),
  max_daily_runs: z.number().nullable(),
  max_daily_cost_usd: z.number().nullable(),
  max_cost_per_run_usd: z.number().nullable(),
  max_duration_ms: z.number().nullable(),
  circuit_breaker: CircuitBreakerConfigSchema,
  overlap_policy: OverlapPolicySchema,
  catchup_window_seconds: z.number(),
  jitter_ms: z.number(),
  retry_on_failure: z.boolean(),
  max_retries: z.number(),
  retry_delay_seconds: z.number(),
  priority: z.number(),
  tags: z.array(z.string()),
  enabled: z.boolean(),
  migration: MigrationConfigSchema,
  paused: z.boolean(),
  pause: PauseViewSchema.nullable(),
  breaker: BreakerViewSchema,
  created_at: z.string(),
  updated_at: z.string(),
});
export type TriggerView = z.infer<typeof TriggerViewSchema>;

export const TriggerEventViewSchema = z.object({
  event_type: z.string(),
  level: z.string(),
  payload: z.record(z.string(), z.unknown()),
  created_at: z.string(),
});

/** `GET /v1/triggers/:name/status`. */
export const TriggerStatusViewSchema = z.object({
  trigger: TriggerViewSchema,
  enabled: z.boolean(),
  paused: z.boolean(),
  /** The next fire times, from the same parser the firing uses. */
  next_fires: z.array(z.string()),
  last_runs: z.array(ExecutionViewSchema),
  window: z.object({
    hours: z.number(),
    runs: z.number(),
    by_status: z.record(ExecutionStatusSchema, z.number()),
    /** (success + fallback) over finished runs; null with none. */
    success_rate: z.number().nullable(),
    average_duration_ms: z.number().nullable(),
    skipped_by_reason: z.partialRecord(SkipReasonSchema, z.number()),
    cost_usd: z.number(),
  }),
  breaker: BreakerViewSchema.extend({ recent_failure_rate: z.number(), recent_runs: z.number() }),
  migration: z.object({
    mode: TriggerModeSchema,
    migration_weight: z.number(),
    consistency: z.object({
      rate: z.number().nullable(),
      samples: z.number(),
      threshold: z.number(),
      window: z.number(),
    }),
    consecutive_agent_failures: z.number(),
    last_rollback: z
      .object({
        report_id: z.string(),
        red_line: z.string(),
        created_at: z.string(),
        follow_up_task_id: z.string(),
        markdown: z.string(),
      })
      .nullable(),
  }),
  /** Pauses, resumes, weight changes, breaker transitions…, newest first (the trigger's audit trail). */
  recent_events: z.array(TriggerEventViewSchema),
});
export type TriggerStatusView = z.infer<typeof TriggerStatusViewSchema>;

/** Most missed fires a resume with `backfill` runs (oldest first). */
export const MAX_BACKFILL_RUNS = 100;

/** The task id a trigger's audit rows are filed under (`GET /v1/tasks/:id/audits` does not list it: it is not a task). */
export function triggerAuditTaskId(eventName: string): string {
  return `trigger:${eventName}`;
}
