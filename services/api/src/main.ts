import { ConfigError } from '@warden/domain';
import { createLogger, runService } from '@warden/observability';
import { loadConfig } from './config.js';
import { createApiService } from './service.js';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`api: ${error.message}\n`);
  process.exit(1);
}
const logger = createLogger({ service: 'api', level: config.LOG_LEVEL });
await runService(createApiService(config, { logger }), logger);
