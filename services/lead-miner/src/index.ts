export { loadConfig, configSchema, type Config } from './config.js';
export { createLeadMinerService, type LeadMinerService } from './service.js';
export { createScanJobHandler, type ScanJobDependencies, type ScanJobResult } from './scan-jobs.js';
export { removeLegacyLeadSchedules, LEGACY_LEAD_SCHEDULER_IDS } from './legacy-schedules.js';
export { loadLeadRules } from './rules-loader.js';
export { createLeadMetrics, type LeadMetrics } from './metrics.js';
