import { ConfigError } from '@warden/domain';
import { createLogger, runService } from '@warden/observability';
import { loadConfig } from './config.js';
import { createExecutorService } from './service.js';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`executor: ${error.message}\n`);
  process.exit(1);
}
const logger = createLogger({ service: 'executor', level: config.LOG_LEVEL });
await runService(createExecutorService(config, { logger }), logger);
