export { loadConfig, configSchema, type Config } from './config.js';
export { createService, fireTimeOf, type SchedulerService } from './service.js';
export { ExecutionEngine, type FireRequest, type AttemptReport } from './execution-engine.js';
export { JobSchedulerReconciler, desiredScheduler } from './reconciler.js';
export { ExecutionSweeper } from './sweeper.js';
export { HttpHandlerClient, type HandlerOutcome } from './http-handler-client.js';
export { schedulerHealth, type SchedulerHealth, type HealthLevel } from './health.js';
