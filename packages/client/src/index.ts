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
export {
  WardenApiError,
  WardenBlockedError,
  WardenConnectionError,
  WardenGuardTimeoutError,
  type GuardDecision,
} from './errors.js';
// Also installs `guard` on WardenClient: guarded actions answered inline (TASK_ACTION_PROPOSED + Prefer: wait).
export {
  MAX_GUARD_WAIT_SECONDS,
  type GuardAction,
  type GuardAllowed,
  type GuardOptions,
  type GuardPaused,
  type GuardResult,
  type WaitForReleaseOptions,
} from './guard.js';
export { deriveEventId, newEventId, type EventContent } from './event-ids.js';
export type { AuditView, IngestResult, Page, TaskView } from '@warden/domain';
// Also installs the change-set methods on WardenClient (submitChangeSet, getChangeSet, approveChangeSet, …).
export {
  sealChangeSet,
  type ApproveChangeSetOptions,
  type ChangeSetSummaryView,
  type ListChangeSetAuditsOptions,
  type ListChangeSetsOptions,
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
  TriggerRunFailedError,
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
// Stored policy versions: push, list, activate, roll back.
export { PoliciesClient, type PoliciesClientOptions, type PromotionRequest } from './policies-client.js';
export {
  NotificationsClient,
  type NewChannelInput,
  type NotificationsClientOptions,
} from './notifications-client.js';
export type { PolicyKind, PolicyVersionView } from '@warden/domain';
