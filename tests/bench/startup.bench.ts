/**
 * `pnpm bench:startup` — how fast each service starts and how much memory it holds when idle, from the
 * production build (`node services/<name>/dist/main.js`) and from source (`node --import tsx …/src/main.ts`),
 * in the same run; and how long the `warden` CLI takes to print its help either way (goals: each idle
 * service ≤ 80 MB RSS, ready ≤ 1 s after its connections, the CLI < 0.5 s from the build; README,
 * "Production build").
 *
 * Each service is started BENCH_STARTUP_RUNS times per mode, the modes taking turns so that both see the
 * same machine: ready_ms is from spawning the process to the first 200 from its /readyz (Postgres and Redis
 * are local, so connecting is a few ms of it), rss_mb its resident memory (threads included) after
 * BENCH_SETTLE_MS idle, ready_cpu_ms the CPU time it had used when ready (less at the mercy of a busy
 * machine than ready_ms). The median run is reported. The CLI's `--help` is timed BENCH_STARTUP_RUNS times per
 * mode, median reported. Builds first when the build is older than its sources (scripts/build.mjs
 * --if-stale). Self-contained: own database and queue prefix, removed at the end, even on failure or Ctrl-C.
 *
 * The services run with the NODE_OPTIONS the image gives every process (`ENV NODE_OPTIONS=` in the Dockerfile,
 * a smaller V8 young generation): what is measured is what is deployed.
 *
 * Environment: BENCH_STARTUP_RUNS (3), BENCH_SETTLE_MS (3000), BENCH_SERVICES (all five, comma-separated),
 * BENCH_NODE_OPTIONS (handed to the services as NODE_OPTIONS instead of the image's; empty: none).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, deleteQueuePrefix, testQueuePrefix, testServers } from '@warden/testing';
import {
  buildProduction,
  repoRoot,
  rssMb,
  SERVICE_NAMES,
  startServiceProcess,
  type ServiceMode,
  type ServiceName,
} from '../support/service-process.js';
import {
  CleanupStack,
  formatTable,
  median,
  medianRun,
  processCpuSeconds,
  runBench,
  type Janitor,
} from './support.js';

const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 3);
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 3000);
const MODES: readonly ServiceMode[] = ['dist', 'tsx'];
const SERVICES = (process.env.BENCH_SERVICES?.split(',') ?? SERVICE_NAMES) as ServiceName[];
for (const name of SERVICES)
  if (!SERVICE_NAMES.includes(name)) throw new Error(`BENCH_SERVICES: unknown service "${name}"`);

/** The NODE_OPTIONS the image sets for every process (its last `ENV NODE_OPTIONS=`), or '' when it sets none. */
function imageNodeOptions(): string {
  const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
  const value = [...dockerfile.matchAll(/^ENV NODE_OPTIONS=(.*)$/gm)].at(-1)?.[1]?.trim() ?? '';
  return value.replace(/^"(.*)"$/, '$1');
}
const NODE_OPTIONS = process.env.BENCH_NODE_OPTIONS ?? imageNodeOptions();

interface StartupRun {
  readyMs: number;
  /** CPU time the process had used when it was ready: start-up work, whatever else the machine is doing. */
  readyCpuMs: number;
  rssMb: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function measureService(
  name: ServiceName,
  mode: ServiceMode,
  env: Record<string, string>,
  janitor: Janitor,
): Promise<StartupRun> {
  const service = await startServiceProcess({ name, mode, env });
  const readyCpuMs = (processCpuSeconds(service.child.pid!) ?? Number.NaN) * 1000;
  janitor.watch({ pids: [service.child.pid!] });
  try {
    await sleep(SETTLE_MS);
    const rss = rssMb(service.child.pid!);
    if (rss === undefined) throw new Error(`${name} (${mode}) exited while idle:\n${service.output()}`);
    return { readyMs: service.readyMs, readyCpuMs, rssMb: rss };
  } finally {
    await service.stop();
  }
}

/** Wall time of `warden --help`, in ms. */
function timeCliHelp(mode: ServiceMode): number {
  const args =
    mode === 'dist'
      ? ['packages/cli/dist/main.js', '--help']
      : ['--import', 'tsx', 'packages/cli/src/main.ts', '--help'];
  const started = performance.now();
  const result = spawnSync(process.execPath, args, { cwd: repoRoot, encoding: 'utf8' });
  const elapsed = performance.now() - started;
  if (result.status !== 0) throw new Error(`warden --help (${mode}) failed: ${result.stderr}`);
  return elapsed;
}

async function main(cleanup: CleanupStack, janitor: Janitor): Promise<void> {
  console.log('building (npm run build -- --if-stale)…');
  buildProduction();
  const database = await createTestDatabase();
  janitor.watch({ databaseUrl: database.url });
  cleanup.push('drop the bench database', () => database.drop());
  const prefix = testQueuePrefix();
  janitor.watch({ queuePrefix: prefix });
  cleanup.push('delete the bench queue keys', () => deleteQueuePrefix(prefix));
  const workspace = await mkdtemp(join(tmpdir(), 'warden-bench-startup-'));
  cleanup.push('remove the bench workspace', () => rm(workspace, { recursive: true, force: true }));
  const env = {
    DATABASE_URL: database.url,
    REDIS_URL: testServers.redisUrl,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'warn',
    EXECUTOR_WORKSPACES: JSON.stringify({ default: workspace }),
    ...(NODE_OPTIONS ? { NODE_OPTIONS } : {}),
  };
  console.log(`services run with NODE_OPTIONS=${NODE_OPTIONS ? `"${NODE_OPTIONS}"` : '(none)'}`);

  const results: { service: string; mode: ServiceMode; run: StartupRun }[] = [];
  for (const name of SERVICES) {
    const runs: Record<ServiceMode, StartupRun[]> = { dist: [], tsx: [] };
    for (let i = 0; i < RUNS; i++)
      for (const mode of i % 2 === 0 ? MODES : [...MODES].reverse())
        runs[mode].push(await measureService(name, mode, env, janitor));
    for (const mode of MODES) {
      const run = medianRun(runs[mode], (r) => r.readyMs);
      results.push({
        service: name,
        mode,
        run: { ...run, rssMb: median(runs[mode].map((r) => r.rssMb)) },
      });
    }
  }
  const cli: Record<ServiceMode, number[]> = { dist: [], tsx: [] };
  for (let i = 0; i < RUNS; i++) for (const mode of MODES) cli[mode].push(timeCliHelp(mode));

  console.log(
    '\n' +
      formatTable(
        ['service', 'mode', 'ready ms', 'CPU ms to ready', 'idle RSS MB'],
        results.map(({ service, mode, run }) => [
          service,
          mode,
          run.readyMs.toFixed(0),
          run.readyCpuMs.toFixed(0),
          run.rssMb.toFixed(0),
        ]),
      ),
  );
  console.log(
    '\n' +
      formatTable(
        ['cli', 'mode', '--help ms'],
        MODES.map((mode) => ['warden --help', mode, median(cli[mode]).toFixed(0)]),
      ) +
      '\n',
  );
  for (const { service, mode, run } of results)
    console.log(
      `RESULT startup service=${service} mode=${mode} rss_mb=${run.rssMb.toFixed(0)} ready_ms=${run.readyMs.toFixed(0)} ready_cpu_ms=${run.readyCpuMs.toFixed(0)}`,
    );
  for (const mode of MODES)
    console.log(`RESULT startup service=cli mode=${mode} help_ms=${median(cli[mode]).toFixed(0)}`);
}

await runBench('startup', main);
