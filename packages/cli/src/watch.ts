/**
 * `--watch` for list commands: the command's output printed again every `--interval` seconds until Ctrl-C,
 * the screen cleared and redrawn when stdout is a terminal, each refresh appended under a timestamp otherwise
 * (a log file, a pipe), so the same flag serves a person and a script.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { ValidationError } from '@warden/domain';
import { describeError } from './errors.js';
import type { CliIo } from './output.js';

export interface WatchFlags {
  watch?: boolean;
  /** Seconds between two refreshes, as typed. @defaultValue `2` */
  interval?: string;
}

const DEFAULT_INTERVAL_SECONDS = 2;
/** Move home, clear the screen: a redraw in place, as `watch(1)` does. */
const CLEAR_SCREEN = '\x1b[H\x1b[2J';

/** Adds `--watch` and `--interval` to a list command. */
export function withWatchOptions(command: Command): Command {
  return command
    .option(
      '--watch',
      'print again every --interval seconds until Ctrl-C (redrawn on a terminal, appended otherwise)',
    )
    .option(
      '--interval <seconds>',
      `with --watch: seconds between refreshes (default ${DEFAULT_INTERVAL_SECONDS})`,
    );
}

/** `--interval` in milliseconds: 0.1 to 3600 seconds. */
export function parseInterval(value: string | undefined): number {
  if (value === undefined) return DEFAULT_INTERVAL_SECONDS * 1000;
  const seconds = Number(value);
  if (value.trim() === '' || !Number.isFinite(seconds) || seconds < 0.1 || seconds > 3600)
    throw new ValidationError(`--interval must be a number of seconds from 0.1 to 3600, got "${value}"`);
  return Math.round(seconds * 1000);
}

export interface RunWatchedOptions {
  /** Ends the watch (after the refresh in flight). @defaultValue Ctrl-C (SIGINT) or SIGTERM */
  signal?: AbortSignal;
  /** The moment a refresh is stamped with. @defaultValue `() => new Date()` */
  now?: () => Date;
}

/**
 * Runs `render` once, or with `--watch` again every interval until stopped. The first refresh's error ends the
 * command as it would without `--watch` (a bad key or flag is not worth repeating); a later one is shown in
 * its refresh and the next one tries again, so a watch outlives an API restart.
 */
export async function runWatched(
  io: CliIo,
  flags: WatchFlags,
  render: (io: CliIo) => Promise<void>,
  options: RunWatchedOptions = {},
): Promise<void> {
  if (!flags.watch) {
    if (flags.interval !== undefined) throw new ValidationError('--interval is for --watch: add --watch');
    return render(io);
  }
  const intervalMs = parseInterval(flags.interval);
  const now = options.now ?? (() => new Date());
  const stopping = new AbortController();
  const onSignal = () => {
    // A second Ctrl-C while a refresh hangs (an API that does not answer) ends at once.
    if (stopping.signal.aborted) process.exit(130);
    stopping.abort();
  };
  const external = options.signal;
  if (external) external.addEventListener('abort', () => stopping.abort(), { once: true });
  else {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  try {
    for (let refresh = 0; !stopping.signal.aborted; refresh++) {
      let frame = '';
      const buffered: CliIo = { out: (text) => (frame += text), err: (text) => (frame += text) };
      try {
        await render(buffered);
      } catch (error) {
        if (refresh === 0) throw error;
        frame += `error: ${describeError(error)} (trying again in ${intervalMs / 1000} s)\n`;
      }
      const stamp = now().toISOString();
      io.out(
        io.isTty
          ? `${CLEAR_SCREEN}every ${intervalMs / 1000} s, ${stamp} (Ctrl-C to stop)\n\n${frame}`
          : `--- ${stamp}\n${frame}`,
      );
      await sleep(intervalMs, undefined, { signal: stopping.signal }).catch(() => {});
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
