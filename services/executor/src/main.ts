import { runMain } from '@warden/runtime';
import { loadConfig } from './config.js';
import { createExecutorService } from './service.js';

await runMain({ service: 'executor', loadConfig: () => loadConfig(), create: createExecutorService });
