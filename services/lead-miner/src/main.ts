import { runMain } from '@warden/runtime';
import { loadConfig } from './config.js';
import { createLeadMinerService } from './service.js';

await runMain({ service: 'lead-miner', loadConfig, create: createLeadMinerService });
