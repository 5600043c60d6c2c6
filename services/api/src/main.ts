import { runMain } from '@warden/runtime';
import { loadConfig } from './config.js';
import { createApiService } from './service.js';

await runMain({
  service: 'api',
  loadConfig: () => loadConfig(),
  create: (config, { logger }) => createApiService(config, { logger }),
});
