import type { Logger } from 'pino';

export interface RunnableService {
  start(): Promise<void>;
  /** Closes in dependency order: workers → queues → Redis → Postgres. Must be safe to call twice. */
  stop(): Promise<void>;
}

export interface RunServiceOptions {
  /** Give up on a graceful stop after this long. @defaultValue `25000` */
  stopTimeoutMs?: number;
  /**
   * Whether a rejection nobody handled is a passing fault of a dependency (Postgres or Redis away for a
   * moment): such a rejection is logged as a warning and the service goes on, as it does for the same failure
   * anywhere it is handled. Any other unhandled rejection is a bug: logged as fatal, and the process exits 1.
   * @defaultValue none: every unhandled rejection ends the process (Node's own behaviour)
   */
  isTransientFault?: (error: unknown) => boolean;
  /**
   * How long a start that fails on a transient fault (see `isTransientFault`) is retried before the process
   * gives up with exit 1: long enough to ride out a dependency restarting, short enough that a wrong address
   * still ends in a clear exit. @defaultValue `120000`
   */
  startRetryMs?: number;
}

/**
 * Starts a service and wires SIGTERM/SIGINT to a graceful stop. A start-up failure (bad config, database
 * behind its migrations, unreachable dependency) is logged as one readable line and exits 1 — no stack
 * trace to an operator and no crash loop of half-started workers. A second signal forces exit.
 *
 * @param options - the stop timeout (a number, for callers of old) or {@link RunServiceOptions}. @defaultValue `{}`
 */
export async function runService(
  service: RunnableService,
  logger: Logger,
  options: number | RunServiceOptions = {},
): Promise<void> {
  const {
    stopTimeoutMs = 25_000,
    isTransientFault,
    startRetryMs = 120_000,
  } = typeof options === 'number' ? { stopTimeoutMs: options } : options;
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
  if (isTransientFault) {
    // A background promise whose failure nobody awaited (a publish, a lock extension) must not end the process
    // because Postgres or Redis restarted; the work it belonged to is retried from Postgres.
    process.on('unhandledRejection', (reason) => {
      if (isTransientFault(reason)) {
        logger.warn(
          { module: 'lifecycle', action: 'unhandled_rejection', status: 'transient', err: reason },
          'a dependency is unavailable; carrying on',
        );
        return;
      }
      logger.fatal(
        { module: 'lifecycle', action: 'unhandled_rejection', status: 'error', err: reason },
        'unhandled rejection; exiting',
      );
      logger.flush();
      process.exit(1);
    });
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  // A dependency that goes away while the service starts (Postgres restarting under it) is waited out: what
  // was opened is closed and the start is tried again, with a growing pause. Anything else ends the process.
  const startedAt = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      await service.start();
      return;
    } catch (error) {
      if (stopping) return;
      if (!isTransientFault?.(error) || Date.now() - startedAt > startRetryMs) {
        await failToStart(service, logger, error);
        return;
      }
      const delayMs = Math.min(15_000, 500 * 2 ** Math.min(attempt, 5));
      logger.warn(
        { module: 'lifecycle', action: 'start', status: 'retrying', attempt, delay_ms: delayMs, err: error },
        `a dependency is unavailable while starting; trying again in ${delayMs / 1000} s`,
      );
      await service.stop().catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (stopping) return;
    }
  }
}

async function failToStart(service: RunnableService, logger: Logger, error: unknown): Promise<void> {
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
