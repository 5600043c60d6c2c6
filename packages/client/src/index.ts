export {
  WardenClient,
  assignEventId,
  type EventToSend,
  type EventWithId,
  type ListTaskAuditsOptions,
  type SendEventResult,
  type SendEventsResult,
  type WardenClientOptions,
  type WaitForDecisionOptions,
  type DecisionView,
} from './warden-client.js';
export { WardenApiError, WardenConnectionError } from './errors.js';
export { deriveEventId, newEventId, type EventContent } from './event-ids.js';
export type { AuditView, IngestResult, Page, TaskView } from '@warden/domain';
// Also installs the change-set methods on WardenClient (submitChangeSet, getChangeSet, approveChangeSet, …).
export {
  sealChangeSet,
  type ApproveChangeSetOptions,
  type ListChangeSetAuditsOptions,
  type RejectChangeSetOptions,
  type WaitForChangeSetOptions,
} from './changesets.js';
export type { ChangeSetSubmissionInput, ChangeSetView } from '@warden/domain';
// Cron triggers: register with handlers (`warden.cron`), run trigger workers, manage triggers.
export {
  WardenCron,
  cronDefinition,
  type CronHandler,
  type CronOptions,
  type CronRegistration,
  type WardenCronOptions,
} from './cron.js';
export {
  createTriggerWorker,
  toHandlerResult,
  TriggerValidationError,
  type TriggerHandler,
  type TriggerHandlerHelpers,
  type TriggerHandlerResult,
  type TriggerWorker,
  type TriggerWorkerOptions,
} from './trigger-worker.js';
export {
  TriggersClient,
  type ManualRun,
  type RegisteredTrigger,
  type TriggersClientOptions,
} from './triggers-client.js';
export type {
  ExecutionView,
  TriggerContext,
  TriggerDefinitionInput,
  TriggerPatch,
  TriggerStatusView,
  TriggerView,
} from '@warden/domain';
