// The schema lives in @warden/config (shared with `warden preflight`); this service parses it once, here.
import { parseConfig } from '@warden/domain';
import { supervisorWorkerConfigSchema, type SupervisorWorkerEnvConfig } from '@warden/config';

export const configSchema = supervisorWorkerConfigSchema;
export type Config = SupervisorWorkerEnvConfig;

/** Reads the configuration once; throws a ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return parseConfig(configSchema, env, 'supervisor-worker configuration');
}
