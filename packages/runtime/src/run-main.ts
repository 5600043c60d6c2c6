import { ConfigError } from '@warden/domain';
import { createLogger, runService, type Logger, type RunnableService } from '@warden/observability';
import { unavailableDependencyOf } from './dependency-errors.js';

export interface RunMainOptions<C extends { LOG_LEVEL: string }> {
  /** The service's name, on every log line and in the one-line config error. */
  service: string;
  /** Parses the environment once; throws `ConfigError` for bad settings. */
  loadConfig: () => C;
  /** Builds the service from its parsed config. */
  create: (config: C, deps: { logger: Logger }) => RunnableService;
}

/**
 * The whole body of a service's `main.ts`: parse the config (a bad setting is one line on stderr and exit 1,
 * never a stack trace or a restart loop of a half-configured service), create the logger, then start the
 * service with signal handling (see `runService`).
 */
export async function runMain<C extends { LOG_LEVEL: string }>(options: RunMainOptions<C>): Promise<void> {
  let config: C;
  try {
    config = options.loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${options.service}: ${error.message}\n`);
    process.exit(1);
  }
  const logger = createLogger({ service: options.service, level: config.LOG_LEVEL });
  await runService(options.create(config, { logger }), logger, {
    isTransientFault: (error) => unavailableDependencyOf(error) !== undefined,
  });
}
