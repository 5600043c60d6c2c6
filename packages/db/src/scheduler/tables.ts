/**
 * Kysely types of the scheduler's tables (migration 2026_11_22_0005); `Database` in database.ts lists them.
 */
import type {
  DefaultedJson,
  NullableJson,
  NullableNumeric,
  NullableTimestamp,
  Numeric,
  RequiredTimestamp,
  Timestamp,
} from '../column-types.js';
import type { ColumnType, Generated, Selectable } from 'kysely';

export interface CronTriggersTable {
  trigger_id: Generated<string>;
  tenant_id: string;
  event_name: string;
  expression: string;
  timezone: string;
  description: string;
  focus: NullableJson<string | string[]>;
  payload: DefaultedJson<Record<string, unknown>>;
  agent_target: NullableJson<Record<string, unknown>>;
  fallback_target: NullableJson<Record<string, unknown>>;
  fallback_strategy: string;
  migration_weight: number;
  mode: string;
  cooldown_seconds: number;
  max_daily_runs: number | null;
  max_daily_cost_usd: NullableNumeric;
  max_cost_per_run_usd: NullableNumeric;
  max_duration_ms: number | null;
  circuit_breaker: DefaultedJson<Record<string, unknown>>;
  overlap_policy: string;
  catchup_window_seconds: number;
  jitter_ms: number;
  retry_on_failure: boolean;
  max_retries: number;
  retry_delay_seconds: number;
  priority: number;
  tags: ColumnType<string[], string[], string[]>;
  enabled: boolean;
  migration: DefaultedJson<Record<string, unknown>>;
  paused: ColumnType<boolean, boolean | undefined, boolean>;
  pause_source: 'manual' | 'circuit_breaker' | null;
  pause_note: string | null;
  paused_at: NullableTimestamp;
  paused_by: string | null;
  breaker_state: ColumnType<
    'closed' | 'open' | 'half_open',
    'closed' | 'open' | 'half_open' | undefined,
    'closed' | 'open' | 'half_open'
  >;
  breaker_opened_at: NullableTimestamp;
  breaker_probe_execution_id: string | null;
  /** When the half-open probe started (migration 2026_12_03_0003). */
  breaker_probe_started_at: NullableTimestamp;
  breaker_reason: string | null;
  breaker_reset_at: NullableTimestamp;
  /** Shadow consistency and the agent-failure red line count runs governed after this (migration 2026_12_03_0003). */
  migration_window_started_at: NullableTimestamp;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: NullableTimestamp;
}

export interface CronExecutionsTable {
  execution_id: string;
  tenant_id: string;
  trigger_id: string;
  event_name: string;
  scheduled_for: RequiredTimestamp;
  triggered_at: Timestamp;
  governed_at: NullableTimestamp;
  started_at: NullableTimestamp;
  completed_at: NullableTimestamp;
  duration_ms: number | null;
  status: string;
  decision_mode: string | null;
  manual: ColumnType<boolean, boolean | undefined, boolean>;
  backfill: ColumnType<boolean, boolean | undefined, boolean>;
  override_overlap: ColumnType<boolean, boolean | undefined, boolean>;
  request_id: string | null;
  requested_by: string | null;
  params: DefaultedJson<Record<string, unknown>>;
  agent_run_id: string | null;
  llm_calls: ColumnType<number, number | undefined, number>;
  cost_usd: NullableNumeric;
  reserved_cost_usd: Numeric;
  governance_checks: DefaultedJson<unknown[]>;
  skip_reason: string | null;
  error: string | null;
  retry_count: ColumnType<number, number | undefined, number>;
  buffered: ColumnType<boolean, boolean | undefined, boolean>;
  probe: ColumnType<boolean, boolean | undefined, boolean>;
  next_attempt_at: NullableTimestamp;
  output: NullableJson<unknown>;
  comparison: NullableJson<Record<string, unknown>>;
  agent_outcome: string | null;
}

export interface CronExecutionAttemptsTable {
  attempt_id: string;
  execution_id: string;
  tenant_id: string;
  trigger_id: string;
  role: 'agent' | 'fallback';
  try: number;
  /** How the call reached its handler; `target` is the queue name, URL or lead-scan window. */
  target_kind: 'queue' | 'http' | 'lead_scan';
  target: string;
  status: 'running' | 'success' | 'failed' | 'timeout';
  started_at: RequiredTimestamp;
  deadline_at: RequiredTimestamp;
  completed_at: NullableTimestamp;
  duration_ms: number | null;
  result: NullableJson<Record<string, unknown>>;
  error_kind: string | null;
  error: string | null;
}

export interface CronRollbackReportsTable {
  report_id: Generated<string>;
  tenant_id: string;
  trigger_id: string;
  event_name: string;
  red_line: string;
  report: DefaultedJson<Record<string, unknown>>;
  markdown: string;
  follow_up_task_id: string;
  created_at: Timestamp;
}

export type CronTriggerRow = Selectable<CronTriggersTable>;
export type CronExecutionRow = Selectable<CronExecutionsTable>;
export type CronAttemptRow = Selectable<CronExecutionAttemptsTable>;
