export { loadConfig, configSchema, type Config } from './config.js';
export { createSupervisorService, type SupervisorService } from './service.js';
export { DecisionProcessor, type EventOutcome, type DecidedEvent } from './decision-processor.js';
export { InboxPoller } from './poller.js';
export { ArchiveMaintenance, type ArchiveMaintenanceOptions } from './archive-maintenance.js';
export { SupervisorPolicyStore } from './policy-store.js';
