import { runMain } from '@warden/runtime';
import { loadConfig } from './config.js';
import { createSupervisorService } from './service.js';

await runMain({ service: 'supervisor-worker', loadConfig, create: createSupervisorService });
