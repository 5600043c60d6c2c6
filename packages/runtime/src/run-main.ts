import { ConfigError } from '@warden/domain';
import {
  TracingConfigError,
  createLogger,
  runService,
  startTracing,
  type Logger,
  type RunnableService,
} from '@warden/observability';
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
 * never a stack trace or a restart loop of a half-configured service), create the logger, start tracing when
 * the `OTEL_*` variables ask for it (see `startTracing`; off by default), then start the service with signal
 * handling (see `runService`). Buffered spans are flushed after the service stopped.
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
  let tracing: Awaited<ReturnType<typeof startTracing>>;
  try {
    tracing = await startTracing({ service: options.service, logger });
  } catch (error) {
    if (!(error instanceof TracingConfigError)) throw error;
    process.stderr.write(`${options.service}: ${error.message}\n`);
    process.exit(1);
  }
  if (tracing)
    logger.info(
      {
        module: 'tracing',
        action: 'start',
        status: 'ok',
        exporter: tracing.settings.exporter,
        service_name: tracing.settings.serviceName,
      },
      'exporting traces',
    );
  // Tracing starts before the service is created: its queues and workers pick their telemetry then.
  const service = options.create(config, { logger });
  const traced: RunnableService = tracing
    ? {
        start: () => service.start(),
        async stop() {
          await service.stop();
          await tracing.shutdown();
        },
      }
    : service;
  await runService(traced, logger, {
    isTransientFault: (error) => unavailableDependencyOf(error) !== undefined,
  });
}
