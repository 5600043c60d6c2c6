import { z } from 'zod';
import { commonEnvShape, parseConfig, portField } from '@warden/domain';

export const configSchema = z.object({
  ...commonEnvShape,
  /** Port of /healthz, /readyz and /metrics. @defaultValue `9101` */
  OPS_PORT: portField(9101),
});
export type Config = z.infer<typeof configSchema>;

/** Reads the configuration once; throws a ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return parseConfig(configSchema, env, 'supervisor-worker configuration');
}
