/**
 * The execution ledger's vocabulary (docs/scheduler.md, "A fire, step by step") and the protocol between the
 * scheduler and the handlers it runs: the job an SDK trigger worker receives, the context its handler gets, and the result it
 * reports back on `cron-results`.
 */
import { z } from 'zod';

export const EXECUTION_STATUSES = ['pending', 'running', 'success', 'failed', 'skipped', 'fallback'] as const;
export const ExecutionStatusSchema = z.enum(EXECUTION_STATUSES);
export type ExecutionStatus = z.infer<typeof ExecutionStatusSchema>;

/** A status that will not change again. */
export function isFinalStatus(status: ExecutionStatus): boolean {
  return status === 'success' || status === 'failed' || status === 'skipped' || status === 'fallback';
}

/** Which handler the weight picked: `agent` (it may still end served by the fallback), `fallback`, or both (`shadow`). */
export const DecisionModeSchema = z.enum(['agent', 'fallback', 'shadow']);
export type DecisionMode = z.infer<typeof DecisionModeSchema>;

/** Why a fire was not run; each is the failing governance check's code. */
export const SKIP_REASONS = [
  'disabled',
  'paused',
  'circuit_open',
  'skipped_missed',
  'cooldown',
  'max_daily_runs',
  'max_daily_cost',
  'overlap',
  'no_fallback_handler',
] as const;
export const SkipReasonSchema = z.enum(SKIP_REASONS);
export type SkipReason = z.infer<typeof SkipReasonSchema>;

/** The governance checks, in the order they run. */
export const GOVERNANCE_CHECKS = [
  'enabled',
  'circuit_breaker',
  'catchup_window',
  'cooldown',
  'daily_runs',
  'daily_cost',
  'overlap',
] as const;
export type GovernanceCheckName = (typeof GOVERNANCE_CHECKS)[number];

export const GovernanceCheckSchema = z.object({
  check: z.enum(GOVERNANCE_CHECKS),
  passed: z.boolean(),
  reason: z.string(),
});
export type GovernanceCheck = z.infer<typeof GovernanceCheckSchema>;

export const HandlerRoleSchema = z.enum(['agent', 'fallback']);
export type HandlerRole = z.infer<typeof HandlerRoleSchema>;

/** What an agent (or fallback) handler returns. Every field is optional; unknown fields are refused. */
export const HandlerResultSchema = z
  .object({
    agent_run_id: z.string().max(200).nullable().optional(),
    llm_calls: z.number().int().min(0).max(1_000_000).optional(),
    cost_usd: z.number().min(0).max(1_000_000).optional(),
    output: z.unknown().optional(),
  })
  .strict();
export type HandlerResult = z.infer<typeof HandlerResultSchema>;

/**
 * How a handler call failed: `validation` (bad input or output: never retried), `handler` (it threw or
 * answered 5xx), `timeout` (past its deadline), `transport` (unreachable, or its HTTP breaker is open).
 */
export const HandlerErrorKindSchema = z.enum(['validation', 'handler', 'timeout', 'transport']);
export type HandlerErrorKind = z.infer<typeof HandlerErrorKindSchema>;

/** What the handler gets plus where it stands in the run. */
export const TriggerContextSchema = z.object({
  trigger_type: z.literal('cron'),
  event_name: z.string(),
  focus: z.union([z.string(), z.array(z.string())]).nullable(),
  expression: z.string(),
  timezone: z.string(),
  scheduled_for: z.string(),
  triggered_at: z.string(),
  previous_run: z
    .object({
      execution_id: z.string(),
      scheduled_for: z.string(),
      status: ExecutionStatusSchema,
      completed_at: z.string().nullable(),
    })
    .nullable(),
  payload: z.record(z.string(), z.unknown()),
  manual: z.boolean(),
  params: z.record(z.string(), z.unknown()),
  execution_id: z.string(),
  /** 0 for the first try, then 1, 2… for retries. */
  retry_count: z.number().int(),
  role: HandlerRoleSchema,
  /** ISO time after which the scheduler counts the call as timed out. */
  deadline_at: z.string(),
});
export type TriggerContext = z.infer<typeof TriggerContextSchema>;

/** The job a trigger worker takes off its handler queue (or the body POSTed to an HTTP handler). */
export const HandlerJobSchema = z.object({
  tenant_id: z.string(),
  execution_id: z.string(),
  attempt_id: z.string(),
  context: TriggerContextSchema,
});
export type HandlerJob = z.infer<typeof HandlerJobSchema>;

/** A handler's report, put on `cron-results` by the trigger worker. */
export const HandlerReportSchema = z.object({
  tenant_id: z.string(),
  execution_id: z.string(),
  attempt_id: z.string(),
  ok: z.boolean(),
  result: z.unknown().optional(),
  error: z
    .object({
      kind: HandlerErrorKindSchema,
      message: z.string().max(4000),
      /** What the failed call spent; a failure that reports none is charged the run's reservation. */
      cost_usd: z.number().min(0).max(1_000_000).optional(),
      llm_calls: z.number().int().min(0).max(1_000_000).optional(),
    })
    .optional(),
});
export type HandlerReport = z.infer<typeof HandlerReportSchema>;

/** One execution as the API shows it. */
export const ExecutionViewSchema = z.object({
  execution_id: z.string(),
  event_name: z.string(),
  scheduled_for: z.string(),
  triggered_at: z.string(),
  started_at: z.string().nullable(),
  completed_at: z.string().nullable(),
  duration_ms: z.number().nullable(),
  status: ExecutionStatusSchema,
  decision_mode: DecisionModeSchema.nullable(),
  manual: z.boolean(),
  backfill: z.boolean(),
  agent_run_id: z.string().nullable(),
  llm_calls: z.number(),
  cost_usd: z.number().nullable(),
  governance_checks: z.array(GovernanceCheckSchema),
  skip_reason: SkipReasonSchema.nullable(),
  error: z.string().nullable(),
  retry_count: z.number(),
  params: z.record(z.string(), z.unknown()),
  output: z.unknown().optional(),
  comparison: z.unknown().nullable(),
});
export type ExecutionView = z.infer<typeof ExecutionViewSchema>;
