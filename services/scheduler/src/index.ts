export { loadConfig, configSchema, type Config } from './config.js';
export { createService, fireTimeOf, type SchedulerService } from './service.js';
export {
  ExecutionEngine,
  type AttemptReport,
  type FireOutcome,
  type FireRequest,
} from './engine/execution-engine.js';
export { JobSchedulerReconciler, desiredScheduler } from './background/reconciler.js';
export { ExecutionSweeper } from './background/sweeper.js';
export { HttpHandlerClient } from './handlers/http-handler-client.js';
export type { HandlerOutcome } from '@warden/domain';
export { schedulerHealth, type SchedulerHealth, type HealthLevel } from './ops/health.js';
