import { ConfigError } from '@warden/domain';
import { createLogger, runService } from '@warden/observability';
import { loadConfig } from './config.js';
import { createSupervisorService } from './service.js';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`supervisor-worker: ${error.message}\n`);
  process.exit(1);
}
const logger = createLogger({ service: 'supervisor-worker', level: config.LOG_LEVEL });
await runService(createSupervisorService(config, { logger }), logger);
