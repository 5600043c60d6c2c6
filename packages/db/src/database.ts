/**
 * The whole schema as Kysely sees it: every context's tables (each defined next to its repositories, in
 * core/, supervisor/, lead/, executor/ and scheduler/), and the one query-executor type repositories take.
 */
import type { Insertable, Kysely, Selectable } from 'kysely';
import type {
  ApiKeyScopeChangesTable,
  ApiKeysTable,
  AuditAnchorsTable,
  AuditChainHeadsTable,
  OperatorKeysTable,
  TaskAuditsTable,
  TasksTable,
  TenantsTable,
} from './core/tables.js';
import type {
  ChangeSetJournalEntriesTable,
  ChangeSetJournalsTable,
  ChangeSetStepsTable,
  ChangeSetsTable,
  ExecutorIdempotencyTable,
  WorkspaceFencesTable,
} from './executor/tables.js';
import type {
  CronExecutionAttemptsTable,
  CronExecutionsTable,
  CronRollbackReportsTable,
  CronTriggersTable,
} from './scheduler/tables.js';
import type { LeadFindingsTable, LeadScansTable } from './lead/tables.js';
import type {
  DecisionsTable,
  EventArchiveTable,
  SupervisorInboxTable,
  TaskGatesTable,
} from './supervisor/tables.js';
import type {
  NotificationChannelsTable,
  NotificationDeliveriesTable,
  NotificationOutboxTable,
} from './notifications/tables.js';
import type { PolicyVersionsTable } from './policies/tables.js';

export type * from './core/tables.js';
export type * from './supervisor/tables.js';

export interface Database {
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
  api_key_scope_changes: ApiKeyScopeChangesTable;
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
  policy_versions: PolicyVersionsTable;
  event_archive: EventArchiveTable;
  notification_channels: NotificationChannelsTable;
  notification_outbox: NotificationOutboxTable;
  notification_deliveries: NotificationDeliveriesTable;
  operator_keys: OperatorKeysTable;
}

/**
 * What every repository function takes first: the pool or an open transaction. A Kysely `Transaction` is a
 * `Kysely`, so one type serves both; a function that needs a transaction (it locks rows until commit) says
 * so in its comment and is called inside `db.transaction()`.
 */
export type QueryExecutor = Kysely<Database>;

export type ApiKeyRow = Selectable<ApiKeysTable>;
export type TaskRow = Selectable<TasksTable>;
export type InboxRow = Selectable<SupervisorInboxTable>;
export type NewInboxRow = Insertable<SupervisorInboxTable>;
export type AuditRow = Selectable<TaskAuditsTable>;
export type GateRow = Selectable<TaskGatesTable>;
