/**
 * Helpers shared by the benchmarks in tests/bench: a bounded concurrent load runner, percentiles and medians,
 * CPU accounting from /proc, a plain-text table printer, and cleanup that survives the bench being killed.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The `p`-th percentile (0–100) of already sorted values, nearest-rank; NaN for no values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** The median of values (the lower middle for an even count, so it is always a measured value). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
}

/** The run whose `key` is the median of all runs, so a table row shows one real, consistent measurement. */
export function medianRun<T>(runs: readonly T[], key: (run: T) => number): T {
  const sorted = [...runs].sort((a, b) => key(a) - key(b));
  const middle = sorted[Math.floor((sorted.length - 1) / 2)];
  if (middle === undefined) throw new Error('medianRun: no runs');
  return middle;
}

export interface LoadResult {
  seconds: number;
  /** Latency of each unit of work in ms, sorted ascending. */
  latenciesMs: number[];
}

/**
 * Runs `work` for every item with at most `concurrency` in flight — each worker takes the next unclaimed
 * item until none is left, so the loop is bounded by `items.length`. Rejects on the first failure.
 */
export async function runConcurrently<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<LoadResult> {
  const latenciesMs = new Array<number>(items.length);
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      const begun = performance.now();
      await work(items[index]!);
      latenciesMs[index] = performance.now() - begun;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  const seconds = (performance.now() - started) / 1000;
  return { seconds, latenciesMs: latenciesMs.sort((a, b) => a - b) };
}

/**
 * A load generator's HTTP client: POSTs a body over kept-alive connections (at most `connections` at once) and
 * resolves with the status and the body as text. node:http rather than fetch: fetch (undici) spent ~0.45 ms of
 * CPU per request in the bench process, about as much as the API spent answering it, and the benches share
 * their machine with what they measure; this client spends roughly a third of that.
 */
export function createHttpPoster(connections: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const post = (
    url: string,
    headers: Record<string, string>,
    body: string,
  ): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const req = request(
        url,
        { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (piece: string) => (text += piece));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  return { post, close: () => agent.destroy() };
}

/** Splits `items` into consecutive chunks of `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let offset = 0; offset < items.length; offset += size) chunks.push(items.slice(offset, offset + size));
  return chunks;
}

const CLOCK_TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user + system) a process has used so far, from /proc; undefined where /proc is missing.
 * Assumes the usual 100 clock ticks per second of Linux.
 */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Busy and total CPU seconds of the whole machine so far, from /proc/stat; undefined where it is missing. */
export function machineCpuSeconds(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    const total = ticks.reduce((sum, value) => sum + value, 0);
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
    return { busy: (total - idle) / CLOCK_TICKS_PER_SECOND, total: total / CLOCK_TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

/** A plain-text table: columns padded to their widest cell, numbers right-aligned. */
export function formatTable(
  headers: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string {
  const cells = [headers.map(String), ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => row[column]?.length ?? 0)));
  const numeric = headers.map(
    (_, column) =>
      rows.length > 0 &&
      rows.every((row) => typeof row[column] === 'number' || /^[\d.,%–-]+$/.test(String(row[column]))),
  );
  const line = (row: readonly string[]) =>
    row
      .map((cell, column) =>
        numeric[column] ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!),
      )
      .join('  ')
      .trimEnd();
  return [
    line(cells[0]!),
    widths.map((width) => '-'.repeat(width)).join('  '),
    ...cells.slice(1).map(line),
  ].join('\n');
}

/** Cleanups run last-in first-out, each at most once; a failing step is reported and the rest still run. */
export class CleanupStack {
  private readonly steps: { name: string; run: () => Promise<void> }[] = [];
  private running: Promise<boolean> | undefined;

  push(name: string, run: () => Promise<void>): void {
    this.steps.push({ name, run });
  }

  /** Resolves true when every step succeeded. Calling it again returns the first call's promise. */
  run(): Promise<boolean> {
    this.running ??= (async () => {
      let succeeded = true;
      for (let step = this.steps.pop(); step; step = this.steps.pop()) {
        try {
          await step.run();
        } catch (error) {
          succeeded = false;
          console.error(
            `cleanup: ${step.name} failed: ${error instanceof Error ? error.message : String(error)}`,
          );
        }
      }
      return succeeded;
    })();
    return this.running;
  }
}

/** What a bench creates outside its own process and must remove however it ends. */
export interface BenchResources {
  /** Processes to stop (SIGTERM) before anything is removed, e.g. an API child still writing. */
  pids?: number[];
  databaseUrl?: string;
  queuePrefix?: string;
}

export interface Janitor {
  /** Tells the janitor about resources as they are created (later calls add to earlier ones). */
  watch(resources: BenchResources): void;
  /** The bench cleaned up after itself: the janitor exits without touching anything. */
  release(): Promise<void>;
}

const JANITOR_FLAG = 'WARDEN_BENCH_JANITOR';

/**
 * Starts a detached watchdog that removes the watched resources if this process ends without `release()`.
 * A bench's own `finally` is not enough: after Ctrl-C, tsx SIGKILLs a script whose event loop does not
 * acknowledge the signal within 30 ms — easily missed on two busy cores — and a SIGKILL runs no cleanup.
 * The janitor lives in its own session, so the terminal's Ctrl-C does not reach it, and it notices the
 * bench's death when its stdin pipe closes.
 */
export function startJanitor(): Janitor {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    detached: true,
    stdio: ['pipe', 'ignore', 'inherit'],
    env: { ...process.env, [JANITOR_FLAG]: '1' },
  });
  child.unref();
  const stdin = child.stdin!;
  // A janitor that could not start must not take the bench down; the bench's own cleanup still runs.
  stdin.on('error', () => {});
  (stdin as unknown as { unref?: () => void }).unref?.();
  return {
    watch: (resources) => {
      stdin.write(JSON.stringify(resources) + '\n');
    },
    release: () =>
      new Promise<void>((resolve) => {
        stdin.end('release\n', () => resolve());
      }),
  };
}

async function runJanitor(): Promise<void> {
  const watched: Required<BenchResources> = { pids: [], databaseUrl: '', queuePrefix: '' };
  let released = false;
  let buffered = '';
  process.stdin.setEncoding('utf8');
  for await (const data of process.stdin) {
    buffered += data as string;
    for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line === 'release') released = true;
      else if (line !== '') {
        const update = JSON.parse(line) as BenchResources;
        watched.pids.push(...(update.pids ?? []));
        watched.databaseUrl = update.databaseUrl ?? watched.databaseUrl;
        watched.queuePrefix = update.queuePrefix ?? watched.queuePrefix;
      }
    }
  }
  if (released) return;

  for (const pid of watched.pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
  }
  const removed: string[] = [];
  // Imported here so that benches importing this module for percentiles do not load database code.
  if (watched.databaseUrl) {
    const { dropDatabase } = await import('@warden/db');
    await dropDatabase(watched.databaseUrl);
    removed.push(`database ${new URL(watched.databaseUrl).pathname.slice(1)}`);
  }
  if (watched.queuePrefix) {
    const { deleteQueuePrefix } = await import('@warden/testing');
    // The API child may still be flushing its last enqueue; give it a moment before deleting its keys.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await deleteQueuePrefix(watched.queuePrefix);
    removed.push(`queue keys ${watched.queuePrefix}:*`);
  }
  if (removed.length > 0)
    console.error(`bench janitor: the bench ended without cleaning up; removed ${removed.join(', ')}`);
}

if (
  process.env[JANITOR_FLAG] === '1' &&
  process.argv[1] !== undefined &&
  import.meta.url === pathToFileURL(process.argv[1]).href
) {
  runJanitor().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error('bench janitor failed:', error);
      process.exit(1);
    },
  );
}

/**
 * Runs a bench's `main` with a cleanup stack and a janitor, cleaning up on success, failure, SIGINT and SIGTERM,
 * then exits (keep-alive sockets and library timers must not hold the process open once the results are out):
 * 0 when `main` succeeded, 1 when it threw, 130 on a signal.
 */
export async function runBench(
  name: string,
  main: (cleanup: CleanupStack, janitor: Janitor) => Promise<void>,
): Promise<never> {
  const cleanup = new CleanupStack();
  const janitor = startJanitor();
  // A janitor is released only when everything is gone; otherwise it retries once this process has exited.
  const cleanUpAndRelease = async () => {
    if (await cleanup.run()) await janitor.release();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: cleaning up`);
      void cleanUpAndRelease().finally(() => process.exit(130));
    });
  }
  let exitCode = 0;
  try {
    await main(cleanup, janitor);
  } catch (error) {
    console.error(`${name} bench failed:`, error);
    exitCode = 1;
  } finally {
    await cleanUpAndRelease();
  }
  process.exit(exitCode);
}
