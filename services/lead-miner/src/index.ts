export { loadConfig, configSchema, type Config } from './config.js';
export { createLeadMinerService, type LeadMinerService } from './service.js';
export { createScanJobHandler, type ScanJobDependencies, type ScanJobResult } from './scan-jobs.js';
export { reconcileLeadSchedules, LEAD_SCHEDULES } from './scan-schedules.js';
export { loadLeadRules } from './rules-loader.js';
export { createLeadMetrics, type LeadMetrics } from './metrics.js';
