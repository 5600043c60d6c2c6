/**
 * How a `cron_triggers` row maps to a trigger and back: the record the scheduler works with (definition plus
 * live state), the view the API shows (HTTP headers redacted), and the columns a definition or a state change
 * writes.
 */
import type {
  BreakerState,
  PauseSource,
  Target,
  TriggerDefinition,
  TriggerLiveState,
  TriggerStateChange,
  TriggerView,
} from '@warden/domain';
import type { Updateable } from 'kysely';
import type { CronTriggerRow, CronTriggersTable } from './tables.js';

/** A trigger as the scheduler works with it: its definition and its live state. */
export interface TriggerRecord extends TriggerLiveState {
  trigger_id: string;
  tenant_id: string;
  definition: TriggerDefinition;
  pause_source: PauseSource | null;
  breaker: BreakerState;
  /**
   * The migration's evidence (shadow comparisons, agent failures) counts from here: set when the trigger enters
   * shadow and when it rolls back. Null: from its first run.
   */
  migration_window_started_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const num = (value: string | null): number | null => (value === null ? null : Number(value));

/** Maps a row to the definition it stores (validated when it was written). */
export function toTriggerRecord(row: CronTriggerRow): TriggerRecord {
  const definition: TriggerDefinition = {
    event_name: row.event_name,
    expression: row.expression,
    timezone: row.timezone,
    description: row.description,
    focus: row.focus,
    payload: row.payload,
    agent: row.agent_target as Target | null,
    fallback: row.fallback_target as Target | null,
    fallback_strategy: row.fallback_strategy as TriggerDefinition['fallback_strategy'],
    migration_weight: row.migration_weight,
    mode: row.mode as TriggerDefinition['mode'],
    cooldown_seconds: row.cooldown_seconds,
    max_daily_runs: row.max_daily_runs,
    max_daily_cost_usd: num(row.max_daily_cost_usd),
    max_cost_per_run_usd: num(row.max_cost_per_run_usd),
    max_duration_ms: row.max_duration_ms,
    circuit_breaker: row.circuit_breaker as TriggerDefinition['circuit_breaker'],
    overlap_policy: row.overlap_policy as TriggerDefinition['overlap_policy'],
    catchup_window_seconds: row.catchup_window_seconds,
    jitter_ms: row.jitter_ms,
    retry_on_failure: row.retry_on_failure,
    max_retries: row.max_retries,
    retry_delay_seconds: row.retry_delay_seconds,
    priority: row.priority,
    tags: row.tags,
    enabled: row.enabled,
    migration: row.migration as TriggerDefinition['migration'],
  };
  return {
    trigger_id: row.trigger_id,
    tenant_id: row.tenant_id,
    definition,
    paused: row.paused,
    pause_source: row.pause_source,
    pause_note: row.pause_note,
    paused_at: row.paused_at,
    paused_by: row.paused_by,
    breaker: {
      state: row.breaker_state,
      opened_at: row.breaker_opened_at,
      probe_execution_id: row.breaker_probe_execution_id,
      probe_started_at: row.breaker_probe_started_at,
      reason: row.breaker_reason,
    },
    breaker_reset_at: row.breaker_reset_at,
    migration_window_started_at: row.migration_window_started_at,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

function redactTarget(target: Target | null): TriggerView['agent'] {
  if (!target) return null;
  if ('queue' in target) return { queue: target.queue };
  if ('lead_scan' in target) return { lead_scan: { window: target.lead_scan.window } };
  return {
    url: target.url,
    timeoutMs: target.timeoutMs,
    ...(target.headers
      ? { headers: Object.fromEntries(Object.keys(target.headers).map((name) => [name, '[redacted]'])) }
      : {}),
  };
}

/** The trigger as the API shows it (HTTP headers redacted). */
export function toTriggerView(record: TriggerRecord): TriggerView {
  const d = record.definition;
  return {
    trigger_id: record.trigger_id,
    tenant_id: record.tenant_id,
    ...d,
    agent: redactTarget(d.agent),
    fallback: redactTarget(d.fallback),
    paused: record.paused,
    pause:
      record.paused && record.pause_source && record.paused_at
        ? {
            source: record.pause_source,
            note: record.pause_note,
            paused_at: record.paused_at.toISOString(),
            paused_by: record.paused_by,
          }
        : null,
    breaker: {
      state: record.breaker.state,
      opened_at: record.breaker.opened_at?.toISOString() ?? null,
      reason: record.breaker.reason,
      probe_execution_id: record.breaker.probe_execution_id,
    },
    created_at: record.created_at.toISOString(),
    updated_at: record.updated_at.toISOString(),
  };
}

/** The columns a definition is stored in. */
export function definitionColumns(d: TriggerDefinition) {
  return {
    event_name: d.event_name,
    expression: d.expression,
    timezone: d.timezone,
    description: d.description,
    focus: d.focus === null ? null : JSON.stringify(d.focus),
    payload: JSON.stringify(d.payload),
    agent_target: d.agent === null ? null : JSON.stringify(d.agent),
    fallback_target: d.fallback === null ? null : JSON.stringify(d.fallback),
    fallback_strategy: d.fallback_strategy,
    migration_weight: d.migration_weight,
    mode: d.mode,
    cooldown_seconds: d.cooldown_seconds,
    max_daily_runs: d.max_daily_runs,
    max_daily_cost_usd: d.max_daily_cost_usd,
    max_cost_per_run_usd: d.max_cost_per_run_usd,
    max_duration_ms: d.max_duration_ms,
    circuit_breaker: JSON.stringify(d.circuit_breaker),
    overlap_policy: d.overlap_policy,
    catchup_window_seconds: d.catchup_window_seconds,
    jitter_ms: d.jitter_ms,
    retry_on_failure: d.retry_on_failure,
    max_retries: d.max_retries,
    retry_delay_seconds: d.retry_delay_seconds,
    priority: d.priority,
    tags: d.tags,
    enabled: d.enabled,
    migration: JSON.stringify(d.migration),
  };
}

/** The columns a state change writes; fields it leaves out keep their values. */
export function stateColumns(change: TriggerStateChange): Updateable<CronTriggersTable> {
  const columns: Updateable<CronTriggersTable> = {};
  if (change.paused !== undefined) columns.paused = change.paused;
  if (change.pause_source !== undefined) columns.pause_source = change.pause_source;
  if (change.pause_note !== undefined) columns.pause_note = change.pause_note;
  if (change.paused_at !== undefined) columns.paused_at = change.paused_at;
  if (change.paused_by !== undefined) columns.paused_by = change.paused_by;
  if (change.breaker_reset_at !== undefined) columns.breaker_reset_at = change.breaker_reset_at;
  if (change.breaker) {
    columns.breaker_state = change.breaker.state;
    columns.breaker_opened_at = change.breaker.opened_at;
    columns.breaker_probe_execution_id = change.breaker.probe_execution_id;
    columns.breaker_probe_started_at = change.breaker.probe_started_at ?? null;
    columns.breaker_reason = change.breaker.reason;
  }
  return columns;
}
