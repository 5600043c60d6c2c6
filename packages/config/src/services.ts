import type { z } from 'zod';
import { apiConfigSchema } from './api.js';
import { executorConfigSchema } from './executor.js';
import { leadMinerConfigSchema } from './lead-miner.js';
import { schedulerConfigSchema } from './scheduler.js';
import { supervisorWorkerConfigSchema } from './supervisor-worker.js';

/** Each service's environment schema by service name (the name of its directory under services/). */
export const SERVICE_CONFIGS = {
  api: apiConfigSchema,
  'supervisor-worker': supervisorWorkerConfigSchema,
  scheduler: schedulerConfigSchema,
  'lead-miner': leadMinerConfigSchema,
  executor: executorConfigSchema,
} as const satisfies Record<string, z.ZodType>;

export type ServiceName = keyof typeof SERVICE_CONFIGS;

/** The service names, in the order the stack starts them. */
export const SERVICE_NAMES = Object.keys(SERVICE_CONFIGS) as ServiceName[];
