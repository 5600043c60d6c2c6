import type { Logger } from '@warden/observability';

export interface PeriodicTaskOptions {
  /** Names the task in log lines (`module`), e.g. `poller`. */
  name: string;
  /** Pause between the end of one run and the start of the next; runs never overlap. */
  intervalMs: number;
  /** One run. A failure is logged as a warning and the next run comes as usual. */
  run: () => Promise<unknown>;
  logger: Logger;
}

/**
 * Runs a background pass (a poller, a sweeper, a reconciler) again and again, `intervalMs` after the previous
 * pass ended. `stop()` cancels the next pass and waits for the one in flight, so a service can close its
 * connections right after without pulling them from under a running query.
 */
export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = true;
  /** A pass asked for while one was running: the next starts as soon as it ends. */
  private again = false;

  constructor(private readonly options: PeriodicTaskOptions) {}

  /** Schedules the first pass `intervalMs` from now. Calling it while started does nothing. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.timer = setTimeout(() => this.tick(), this.options.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /**
   * Starts the next pass now instead of after the interval (a backlog is waiting, a dependency came back); while
   * a pass runs, the next one follows it at once. Passes still never overlap. Does nothing once stopped.
   */
  runSoon(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    this.tick();
  }

  private tick(): void {
    this.running = this.options
      .run()
      .catch((error: unknown) =>
        this.options.logger.warn(
          { module: this.options.name, action: 'run', status: 'error', err: error },
          `${this.options.name} failed; will try again`,
        ),
      )
      .finally(() => {
        this.running = undefined;
        const delayMs = this.again ? 0 : this.options.intervalMs;
        this.again = false;
        if (!this.stopped) this.timer = setTimeout(() => this.tick(), delayMs);
      });
  }
}
