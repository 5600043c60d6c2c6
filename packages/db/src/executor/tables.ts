/**
 * Kysely types of the executor's tables (migration 2026_11_22_0004); `Database` in database.ts lists them.
 */
import type { BigIntColumn, Json, NullableJson, NullableTimestamp, Timestamp } from '../column-types.js';
import type { ColumnType, Generated, Selectable } from 'kysely';
import type { ExecutionResult, WriteGateResult } from '@warden/domain';

export interface ChangeSetsTable {
  tenant_id: string;
  changeset_id: string;
  plan_id: string;
  workspace: string;
  generated_by: string;
  checksum: string;
  plan_hash: string;
  idempotency_key: string;
  fingerprint: string;
  plan_json: string;
  changes_json: string;
  verdict: string;
  risk_effective: string;
  verdict_detail: Json<WriteGateResult>;
  policy_hash: string;
  status: ColumnType<string, string | undefined, string>;
  approval_state: string;
  approval_by: string | null;
  approval_at: NullableTimestamp;
  approval_checksum: string | null;
  approval_plan_hash: string | null;
  approval_note: string | null;
  /** When a pending approval is denied (migration 2026_12_04_0004); null when no approval was asked for. */
  approval_expires_at: NullableTimestamp;
  /** When the "approval expires soon" notification was recorded; null until then. */
  approval_expiry_warned_at: NullableTimestamp;
  submitted_by: string;
  submitted_at: Timestamp;
  updated_at: Timestamp;
  queued_at: NullableTimestamp;
  attempts: ColumnType<number, number | undefined, number>;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
  error_code: string | null;
  error_message: string | null;
  result: NullableJson<ExecutionResult>;
  fence_token: ColumnType<string | null, number | string | null | undefined, number | string | null>;
}

export interface ChangeSetStepsTable {
  step_id: Generated<string>;
  tenant_id: string;
  changeset_id: string;
  attempt: number;
  step: string;
  status: string;
  message: string;
  detail: Json<Record<string, unknown>>;
  duration_ms: number | null;
  created_at: Timestamp;
}

export type JournalPhase =
  | 'prepared'
  | 'applying'
  | 'applied'
  | 'verifying'
  | 'rolling_back'
  | 'committed'
  | 'rolled_back'
  | 'rollback_failed';

export interface ChangeSetJournalsTable {
  journal_id: Generated<string>;
  tenant_id: string;
  changeset_id: string;
  attempt: number;
  workspace: string;
  phase: JournalPhase;
  fence_token: BigIntColumn;
  executor_id: string;
  created_dirs: ColumnType<string[], string | undefined, string>;
  lease_expires_at: ColumnType<Date, Date | string, Date | string>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ChangeSetJournalEntriesTable {
  journal_id: ColumnType<string, number | string, number | string>;
  seq: number;
  path: string;
  operation: 'create' | 'update' | 'delete';
  pre_exists: boolean;
  pre_hash: string | null;
  pre_mode: number | null;
  backup: Buffer | null;
  new_hash: string | null;
  /** How far the apply got with this entry: `pending` not started, `writing` started, `applied` written. */
  write_state: ColumnType<JournalWriteState, JournalWriteState | undefined, JournalWriteState>;
}

export type JournalWriteState = 'pending' | 'writing' | 'applied';

export interface ExecutorIdempotencyTable {
  tenant_id: string;
  idempotency_key: string;
  fingerprint: string;
  changeset_id: string;
  state: 'in_progress' | 'completed' | 'failed';
  result: NullableJson<ExecutionResult>;
  created_at: Timestamp;
  updated_at: Timestamp;
  expires_at: ColumnType<Date, Date | string, Date | string>;
}

export interface WorkspaceFencesTable {
  workspace: string;
  token: BigIntColumn;
  holder: string;
  tenant_id: string | null;
  changeset_id: string | null;
  acquired_at: Timestamp;
}

export type ChangeSetRow = Selectable<ChangeSetsTable>;
export type ChangeSetStepRow = Selectable<ChangeSetStepsTable>;
export type ChangeSetJournalRow = Selectable<ChangeSetJournalsTable>;
export type ChangeSetJournalEntryRow = Selectable<ChangeSetJournalEntriesTable>;
export type ExecutorIdempotencyRow = Selectable<ExecutorIdempotencyTable>;
