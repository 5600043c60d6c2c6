// The schema lives in @warden/config (shared with `warden preflight`); this service parses it once, here.
import { parseConfig } from '@warden/domain';
import { schedulerConfigSchema, type SchedulerEnvConfig } from '@warden/config';

export const configSchema = schedulerConfigSchema;
export type Config = SchedulerEnvConfig;

/** Reads the configuration once; throws a ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return parseConfig(configSchema, env, 'scheduler configuration');
}
