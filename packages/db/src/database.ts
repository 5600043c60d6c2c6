/**
 * Kysely types for every table, in one place. Column types follow Kysely's convention: `Generated<T>` for
 * columns the database fills, `ColumnType<Select, Insert, Update>` where reading and writing differ.
 */
import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';
import type {
  ChangeSetJournalEntriesTable,
  ChangeSetJournalsTable,
  ChangeSetStepsTable,
  ChangeSetsTable,
  ExecutorIdempotencyTable,
  WorkspaceFencesTable,
} from './changeset-tables.js';
import type { CronExecutionAttemptsTable, CronExecutionsTable, CronRollbackReportsTable, CronTriggersTable } from './cron-tables.js';
import type { LeadFindingsTable, LeadScansTable } from './lead-tables.js';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type RequiredTimestamp = ColumnType<Date, Date | string, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
/** jsonb: read as parsed JSON, written as a JSON string (pg does not stringify arrays for us). */
type Json<T> = ColumnType<T, string, string>;

export interface TenantsTable {
  tenant_id: string;
  name: string;
  created_at: Timestamp;
}

export interface ApiKeysTable {
  key_id: Generated<string>;
  tenant_id: string;
  name: string;
  key_hash: string;
  key_prefix: string;
  scopes: ColumnType<string[], string[], string[]>;
  created_at: Timestamp;
  last_used_at: NullableTimestamp;
  revoked_at: NullableTimestamp;
}

export interface TasksTable {
  tenant_id: string;
  task_id: string;
  status: string;
  metadata: Json<Record<string, unknown>>;
  retry_count: ColumnType<number, number | undefined, number>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

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

export interface TaskAuditsTable {
  audit_id: Generated<string>;
  tenant_id: string;
  task_id: string;
  event_type: string;
  level: string;
  decision_id: string | null;
  event_id: string | null;
  source_event_ts: NullableTimestamp;
  processed_at: Timestamp;
  payload: Json<Record<string, unknown>>;
  created_at: Timestamp;
  /** Position in the tenant's hash chain (1, 2, …), unique per tenant; written only by `appendAudits`. */
  chain_seq: ColumnType<string, number | string, number | string>;
  prev_hash: string;
  row_hash: string;
  /** How `row_hash` was computed (see `AuditHashVersion` in @warden/domain): 1 before the upgrade, 2 since. */
  hash_version: number;
}

/** Signed checkpoints of the audit chains: an HMAC (key outside the database) over one row's position and hash. */
export interface AuditAnchorsTable {
  tenant_id: string;
  chain_seq: ColumnType<string, number | string, number | string>;
  row_hash: string;
  key_id: string;
  signature: string;
  anchored_at: RequiredTimestamp;
}

export interface AuditChainHeadsTable {
  tenant_id: string;
  chain_seq: ColumnType<string, number | string, number | string>;
  row_hash: string;
  updated_at: Timestamp;
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

export interface Database {
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
  tasks: TasksTable;
  supervisor_inbox: SupervisorInboxTable;
  decisions: DecisionsTable;
  task_audits: TaskAuditsTable;
  task_gates: TaskGatesTable;
  audit_chain_heads: AuditChainHeadsTable;
  audit_anchors: AuditAnchorsTable;
  lead_scans: LeadScansTable;
  lead_findings: LeadFindingsTable;
  changesets: ChangeSetsTable;
  changeset_steps: ChangeSetStepsTable;
  changeset_journals: ChangeSetJournalsTable;
  changeset_journal_entries: ChangeSetJournalEntriesTable;
  executor_idempotency: ExecutorIdempotencyTable;
  workspace_fences: WorkspaceFencesTable;
  cron_triggers: CronTriggersTable;
  cron_executions: CronExecutionsTable;
  cron_execution_attempts: CronExecutionAttemptsTable;
  cron_rollback_reports: CronRollbackReportsTable;
}

export type ApiKeyRow = Selectable<ApiKeysTable>;
export type TaskRow = Selectable<TasksTable>;
export type InboxRow = Selectable<SupervisorInboxTable>;
export type NewInboxRow = Insertable<SupervisorInboxTable>;
export type AuditRow = Selectable<TaskAuditsTable>;
export type GateRow = Selectable<TaskGatesTable>;
