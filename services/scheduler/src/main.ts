import { runMain } from '@warden/runtime';
import { loadConfig } from './config.js';
import { createService } from './service.js';

await runMain({ service: 'scheduler', loadConfig: () => loadConfig(), create: createService });
