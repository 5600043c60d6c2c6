import { spawn } from 'node:child_process';

export interface CommandResult {
  ok: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  durationMs: number;
  /** The last `outputLimitBytes` of stdout and stderr, interleaved as they came. */
  output: string;
  /** Why it could not start (e.g. `spawn npm ENOENT`). */
  error?: string;
}

export interface RunCommandOptions {
  cwd: string;
  /** The whole environment of the command: nothing of the executor's own leaks in unless listed. */
  env: Record<string, string>;
  timeoutMs: number;
  outputLimitBytes: number;
  /** Switch to this user before exec (the executor must be root). @defaultValue the executor's own user */
  runAs?: { uid: number; gid: number };
}

/**
 * Runs a program without a shell, in its own process group so a timeout kills it and everything it started.
 * Never throws: a command that cannot start, exits non-zero or runs out of time is a failed result.
 */
export function runCommand(
  command: string,
  args: readonly string[],
  options: RunCommandOptions,
): Promise<CommandResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    let output = Buffer.alloc(0);
    const keep = (chunk: Buffer) => {
      output = Buffer.concat([output, chunk]);
      if (output.length > options.outputLimitBytes * 2)
        output = output.subarray(output.length - options.outputLimitBytes);
    };
    let timedOut = false;
    let settled = false;
    const child = spawn(command, [...args], {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      shell: false,
      ...(options.runAs ?? {}),
    });
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const finish = (result: Omit<CommandResult, 'durationMs' | 'output'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const tail = output.subarray(Math.max(0, output.length - options.outputLimitBytes)).toString('utf8');
      resolve({ ...result, durationMs: Math.round(performance.now() - started), output: tail });
    };
    child.once('error', (error) =>
      finish({ ok: false, exitCode: null, signal: null, timedOut: false, error: error.message }),
    );
    child.once('close', (exitCode, signal) => {
      // Children it left behind in its group go too.
      if (!timedOut) killGroupQuietly(child.pid);
      finish({ ok: exitCode === 0 && !timedOut, exitCode, signal, timedOut });
    });
  });
}

function killGroupQuietly(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // The group is gone already.
  }
}

/** One line describing a result: `exit 0`, `exit 1`, `timed out after 5000 ms`, `could not start: …`. */
export function describeCommandResult(result: CommandResult, timeoutMs: number): string {
  if (result.error) return `could not start: ${result.error}`;
  if (result.timedOut) return `timed out after ${timeoutMs} ms (killed)`;
  if (result.signal) return `killed by ${result.signal}`;
  return `exit ${result.exitCode}`;
}
