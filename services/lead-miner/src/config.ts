// The schema lives in @warden/config (shared with `warden preflight`); this service parses it once, here.
import { parseConfig } from '@warden/domain';
import { leadMinerConfigSchema, type LeadMinerEnvConfig } from '@warden/config';

export const configSchema = leadMinerConfigSchema;
export type Config = LeadMinerEnvConfig;

/** Reads the configuration once; throws a ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return parseConfig(configSchema, env, 'lead-miner configuration');
}
