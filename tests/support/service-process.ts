/**
 * A Warden service as its own process — from its build (`node services/<name>/dist/main.js`) or from its
 * source through tsx — with the time it took to answer /readyz and its resident memory. Used by the
 * production-build test and the start-up benchmark.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export type ServiceName = 'api' | 'supervisor-worker' | 'scheduler' | 'lead-miner' | 'executor';
export const SERVICE_NAMES: readonly ServiceName[] = [
  'api',
  'supervisor-worker',
  'scheduler',
  'lead-miner',
  'executor',
];

/** How a service is started: its compiled build, or its TypeScript source through tsx (development). */
export type ServiceMode = 'dist' | 'tsx';

export function serviceCommand(name: ServiceName, mode: ServiceMode): string[] {
  return mode === 'dist'
    ? [`services/${name}/dist/main.js`]
    : ['--import', 'tsx', `services/${name}/src/main.ts`];
}

/**
 * Builds the given targets (`scripts/build.mjs --if-stale`: a build newer than all its inputs is reused).
 * Throws with the build's output when it fails.
 */
export function buildProduction(targets: string[] = []): void {
  const result = spawnSync(
    process.execPath,
    [join(repoRoot, 'scripts/build.mjs'), '--if-stale', ...targets],
    {
      cwd: repoRoot,
      encoding: 'utf8',
    },
  );
  if (result.status !== 0) throw new Error(`npm run build failed:\n${result.stdout}${result.stderr}`);
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/** Resident memory of a process in MB (VmRSS: its threads included), or undefined once it is gone. */
export function rssMb(pid: number): number | undefined {
  try {
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

export interface ServiceProcess {
  name: ServiceName;
  child: ChildProcess;
  /** The port of its /readyz (the api's HTTP port, a worker's ops port). */
  port: number;
  /** Milliseconds from spawning the process to the first 200 from /readyz. */
  readyMs: number;
  /** Everything it wrote so far (JSON log lines). */
  output(): string;
  /** SIGTERM, then SIGKILL after 10 s; resolves once it has exited. */
  stop(): Promise<void>;
}

export interface StartServiceOptions {
  name: ServiceName;
  mode: ServiceMode;
  /** Configuration on top of PATH and HOME; the rest of this process's environment is not passed on. */
  env: Record<string, string>;
  /** Extra node options placed before the entry point (e.g. `--import` of a probe). @defaultValue none */
  nodeArgs?: string[];
  /** Give up waiting for /readyz after this long. @defaultValue `60000` */
  timeoutMs?: number;
}

/**
 * Starts a service on a free port and waits until its /readyz answers 200. The environment is built from
 * scratch, so nothing of the caller's (a NODE_OPTIONS with a loader, say) reaches the service.
 */
export async function startServiceProcess(options: StartServiceOptions): Promise<ServiceProcess> {
  const { name, mode } = options;
  const entry = serviceCommand(name, mode);
  if (mode === 'dist' && !existsSync(join(repoRoot, entry[0]!)))
    throw new Error(`${entry[0]} does not exist: run npm run build`);
  const port = await freePort();
  const portVar = name === 'api' ? 'PORT' : 'OPS_PORT';
  const started = performance.now();
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...entry], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      ...options.env,
      [portVar]: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(force);
  };

  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${name} (${mode}) exited before it was ready:\n${output}`);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${name} (${mode}) was not ready on :${port} in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return { name, child, port, readyMs: performance.now() - started, output: () => output, stop };
}
