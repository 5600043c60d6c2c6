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
