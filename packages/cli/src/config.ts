import { resolve } from 'node:path';
import { z } from 'zod';
import { auditKeysField, commonEnvShape, ConfigError, parseConfig } from '@warden/domain';

export const configSchema = z.object({
  DATABASE_URL: commonEnvShape.DATABASE_URL,
  REDIS_URL: commonEnvShape.REDIS_URL,
  QUEUE_PREFIX: commonEnvShape.QUEUE_PREFIX,
  REDLOCK_URLS: commonEnvShape.REDLOCK_URLS,
  /**
   * The supervisor policy file, resolved against the current directory.
   * @defaultValue `infra/policies/supervisor.yaml`
   */
  SUPERVISOR_POLICY_FILE: z.string().min(1).default('infra/policies/supervisor.yaml'),
  /** The WriteGate policy (api, executor). @defaultValue `infra/policies/writegate.yaml` */
  WRITEGATE_POLICY_FILE: z.string().min(1).default('infra/policies/writegate.yaml'),
  /** The lead miner's rules file. @defaultValue `infra/policies/lead-rules.yaml` */
  LEAD_RULES_FILE: z.string().min(1).default('infra/policies/lead-rules.yaml'),
  /**
   * Audit anchor key(s), comma-separated, first signs (`warden audit anchor`), all verify (`warden audit
   * verify`). @defaultValue none: anchors are neither made nor checked
   */
  WARDEN_AUDIT_KEY: auditKeysField,
});

/** The configuration variables that name files, resolved against the current directory. */
const FILE_FIELDS = ['SUPERVISOR_POLICY_FILE', 'WRITEGATE_POLICY_FILE', 'LEAD_RULES_FILE'] as const;
export type CliConfig = z.infer<typeof configSchema>;

/** What the CLI needs from its surroundings; commands receive it instead of reading globals. */
export interface CliEnvironment {
  /** Variables the configuration is read from. @defaultValue `process.env` */
  env: NodeJS.ProcessEnv;
  /** Directory relative paths (the policy file, `--supervisor-policy`) resolve against. @defaultValue `process.cwd()` */
  cwd: string;
}

export function processEnvironment(): CliEnvironment {
  return { env: process.env, cwd: process.cwd() };
}

/** Reads the configuration once; throws a ConfigError naming every bad variable (exit 2). */
export function loadConfig({ env, cwd }: CliEnvironment): CliConfig {
  const config = parseConfig(configSchema, env, 'configuration');
  for (const field of FILE_FIELDS) config[field] = resolve(cwd, config[field]);
  return config;
}

export interface ConfigInspection {
  /** The whole configuration when every variable is valid. */
  config?: CliConfig;
  /** Why it is not, naming every bad variable. */
  error?: ConfigError;
  /** Each variable that is valid on its own, so preflight can still run the checks that need only those. */
  fields: Partial<CliConfig>;
}

/** Like {@link loadConfig}, but never throws: reports the error and keeps the variables that are fine. */
export function inspectConfig(environment: CliEnvironment): ConfigInspection {
  try {
    const config = loadConfig(environment);
    return { config, fields: config };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const fields: Record<string, unknown> = {};
    for (const [name, schema] of Object.entries(configSchema.shape)) {
      const result = schema.safeParse(environment.env[name]);
      if (result.success) fields[name] = result.data;
    }
    for (const field of FILE_FIELDS) {
      if (typeof fields[field] === 'string') fields[field] = resolve(environment.cwd, fields[field]);
    }
    return { error, fields: fields as Partial<CliConfig> };
  }
}
