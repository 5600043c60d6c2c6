// The schema lives in @warden/config (shared with `warden preflight`); this service parses it once, here,
// and derives its sandbox settings from it.
import { parseConfig } from '@warden/domain';
import { executorConfigSchema, type ExecutorEnvConfig } from '@warden/config';
import type { SandboxSettings } from './sandbox/index.js';

export { WorkspaceEntrySchema, WorkspacesSchema, type WorkspacesConfig } from '@warden/config';

export const configSchema = executorConfigSchema;
export type Config = ExecutorEnvConfig & {
  /** How verifications run: read from the same environment (which is also where their listed variables come from). */
  sandbox: SandboxSettings;
};

/** Reads the configuration once; throws a ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const config = parseConfig(configSchema, env, 'executor configuration');
  const mib = (value: number) => value * 1024 * 1024;
  const sandbox: SandboxSettings = {
    mode: config.EXECUTOR_SANDBOX,
    path: config.EXECUTOR_SANDBOX_PATH,
    readOnly: config.EXECUTOR_SANDBOX_READONLY,
    ...(config.EXECUTOR_RUN_AS === undefined ? {} : { runAs: config.EXECUTOR_RUN_AS }),
    limits: {
      cpuSeconds: config.EXECUTOR_SANDBOX_CPU_SECONDS,
      memoryBytes: mib(config.EXECUTOR_SANDBOX_MEMORY_MB),
      processes: config.EXECUTOR_SANDBOX_MAX_PROCESSES,
      fileBytes: mib(config.EXECUTOR_SANDBOX_MAX_FILE_MB),
    },
    commonEnv: config.EXECUTOR_COMMAND_ENV,
    source: env,
    maxTimeoutMs: config.EXECUTOR_MAX_COMMAND_TIMEOUT_MS,
    outputLimitBytes: config.EXECUTOR_OUTPUT_LIMIT_BYTES,
  };
  return { ...config, sandbox };
}
