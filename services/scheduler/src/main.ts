import { ConfigError } from '@warden/domain';
import { createLogger, runService } from '@warden/observability';
import { loadConfig } from './config.js';
import { createService } from './service.js';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`scheduler: ${error.message}\n`);
  process.exit(1);
}
const logger = createLogger({ service: 'scheduler', level: config.LOG_LEVEL });
await runService(createService(config, { logger }), logger);
