import { ConfigError } from '@warden/domain';
import { createLogger, runService } from '@warden/observability';
import { loadConfig } from './config.js';
import { createLeadMinerService } from './service.js';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`lead-miner: ${error.message}\n`);
  process.exit(1);
}
const logger = createLogger({ service: 'lead-miner', level: config.LOG_LEVEL });
await runService(createLeadMinerService(config, { logger }), logger);
