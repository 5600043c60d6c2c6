import type { Logger } from 'pino';

export interface RunnableService {
  start(): Promise<void>;
  /** Closes in dependency order: workers → queues → Redis → Postgres. Must be safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts a service and wires SIGTERM/SIGINT to a graceful stop. A start-up failure (bad config, database
 * behind its migrations, unreachable dependency) is logged as one readable line and exits 1 — no stack
 * trace to an operator and no crash loop of half-started workers. A second signal forces exit.
 *
 * @param stopTimeoutMs - give up on a graceful stop after this long. @defaultValue `25000`
 */
export async function runService(
  service: RunnableService,
  logger: Logger,
  stopTimeoutMs = 25_000,
): Promise<void> {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      logger.warn(
        { module: 'lifecycle', action: 'stop', status: 'forced', signal },
        'second signal: exiting now',
      );
      process.exit(1);
    }
    stopping = true;
    logger.info({ module: 'lifecycle', action: 'stop', status: 'started', signal }, 'stopping');
    const timer = setTimeout(() => {
      logger.error(
        { module: 'lifecycle', action: 'stop', status: 'timeout' },
        `graceful stop took over ${stopTimeoutMs} ms; exiting`,
      );
      process.exit(1);
    }, stopTimeoutMs);
    timer.unref();
    try {
      await service.stop();
      logger.info({ module: 'lifecycle', action: 'stop', status: 'ok' }, 'stopped');
      logger.flush();
      process.exit(0);
    } catch (error) {
      logger.error({ module: 'lifecycle', action: 'stop', status: 'error', err: error }, 'stop failed');
      logger.flush();
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  try {
    await service.start();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    logger.fatal(
      {
        module: 'lifecycle',
        action: 'start',
        status: 'error',
        error_code: (error as { code?: string }).code,
      },
      `cannot start: ${message}`,
    );
    await service.stop().catch(() => {});
    logger.flush();
    // A plain line on stderr too, for someone running the service by hand.
    process.stderr.write(`cannot start: ${message}\n`);
    process.exit(1);
  }
}
