// Every service's environment schema, in one pure package (zod and @warden/domain only): the services parse
// their own with it at start-up, and `warden preflight` checks a whole deployment's environment against all of
// them, so a setting a service would refuse is caught before it starts.
export { apiConfigSchema, type ApiEnvConfig } from './api.js';
export {
  executorConfigSchema,
  WorkspaceEntrySchema,
  WorkspacesSchema,
  type ExecutorEnvConfig,
  type WorkspacesConfig,
} from './executor.js';
export { leadMinerConfigSchema, type LeadMinerEnvConfig } from './lead-miner.js';
export { schedulerConfigSchema, type SchedulerEnvConfig } from './scheduler.js';
export { supervisorWorkerConfigSchema, type SupervisorWorkerEnvConfig } from './supervisor-worker.js';
export { SERVICE_CONFIGS, SERVICE_NAMES, type ServiceName } from './services.js';
