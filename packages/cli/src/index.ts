export { createProgram, type CreateProgramOptions } from './program.js';
export { loadConfig, configSchema, type CliConfig, type CliEnvironment } from './config.js';
export {
  CommandFailedError,
  UsageError,
  describeError,
  exitCodeFor,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
} from './errors.js';
export type { CliIo } from './output.js';
export { runMigrate, type MigrateOptions, type MigrateReport } from './commands/migrate.js';
export {
  createApiKey,
  createOperatorKey,
  revokeApiKeyById,
  parseScopes,
  type CreateApiKeyOptions,
  type CreatedApiKey,
} from './commands/keys.js';
export {
  formatPreflightReport,
  runPreflight,
  type CheckStatus,
  type PreflightCheck,
  type PreflightOptions,
  type PreflightReport,
} from './commands/preflight.js';
