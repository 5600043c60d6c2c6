/** Kysely types of the supervisor's tables: its inbox, decisions and pause gates (migration 0001). */
import type { ColumnType, Generated } from 'kysely';
import type { GateState } from '@warden/domain';
import type { Json, NullableTimestamp, RequiredTimestamp, Timestamp } from '../column-types.js';

export type InboxStatus = 'pending' | 'processing' | 'completed' | 'failed' | 'dead';

export interface SupervisorInboxTable {
  inbox_id: Generated<string>;
  tenant_id: string;
  event_id: string;
  task_id: string;
  event_type: string;
  source: string;
  payload: Json<Record<string, unknown>>;
  trace_id: string | null;
  event_ts: RequiredTimestamp;
  received_at: Timestamp;
  status: ColumnType<InboxStatus, InboxStatus | undefined, InboxStatus>;
  attempts: ColumnType<number, number | undefined, number>;
  claim_generation: ColumnType<number, number | undefined, number>;
  claimed_at: NullableTimestamp;
  claim_expires_at: NullableTimestamp;
  next_attempt_at: NullableTimestamp;
  processed_at: NullableTimestamp;
  error: string | null;
  last_enqueued_at: NullableTimestamp;
}

export interface DecisionsTable {
  decision_id: string;
  tenant_id: string;
  task_id: string;
  event_id: string;
  decision_type: string;
  reason: string;
  findings: Json<unknown[]>;
  actions: Json<unknown[]>;
  policy: string;
  policy_version: string;
  would_have: string | null;
  created_at: Timestamp;
}

export interface TaskGatesTable {
  tenant_id: string;
  gate_id: string;
  task_id: string;
  checkpoint: string;
  reason: string;
  state: ColumnType<GateState, GateState | undefined, GateState>;
  decision_id: string | null;
  opened_at: Timestamp;
  released_at: NullableTimestamp;
  released_by: string | null;
  /** The deadline (migration 2026_12_04_0004): an open gate past it is expired — its task blocked. */
  expires_at: ColumnType<Date, Date | string | undefined, Date | string>;
  /** When the "expires soon" notification was recorded; null until then. */
  expiry_warned_at: NullableTimestamp;
}

/**
 * A decided event kept for replay (migration 2026_12_04_0003): as received, with the task context its policy
 * saw and what was decided. Partitioned by UTC day of `decided_at`; see `event-archive.ts`.
 */
export interface EventArchiveTable {
  tenant_id: string;
  event_id: string;
  task_id: string;
  event_type: string;
  inbox_id: string;
  source: string;
  trace_id: string | null;
  event_ts: RequiredTimestamp;
  received_at: RequiredTimestamp;
  payload: Json<Record<string, unknown>>;
  task_context: Json<{ status: string | null; metadata: Record<string, unknown>; retry_count: number }>;
  running_tasks: Json<Array<{ task_id: string; resources: string[] }>>;
  decision_id: string;
  decision_type: string;
  policy: string;
  policy_version: string;
  finding_codes: ColumnType<string[], string[], string[]>;
  would_have: string | null;
  decided_at: RequiredTimestamp;
}
