/** Kysely types of the supervisor's tables: its inbox, decisions and pause gates (migration 0001). */
import type { ColumnType, Generated } from 'kysely';
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
  state: ColumnType<'open' | 'released', 'open' | 'released' | undefined, 'open' | 'released'>;
  decision_id: string | null;
  opened_at: Timestamp;
  released_at: NullableTimestamp;
  released_by: string | null;
}
