/**
 * `pnpm bench:ingest` — how fast `POST /v1/events` ingests, one event per request and in batches of 100,
 * against what Postgres alone does with the same rows (the floors: the same INSERT, `insertPendingEvents`,
 * from the same number of clients — 100 rows a statement for batches, one row a statement for single events).
 * Goals (issue 12): single-event requests ≥ 0.5× the single floor, batches of 100 ≥ 0.8× the batch floor. Self-contained: its own database, queue prefix and API key, all removed at the end, even on failure
 * or Ctrl-C. Loopback only; every loop is bounded by a fixed number of events.
 *
 * The API runs as a child process by default (`BENCH_API=in-process` runs it inside this process instead).
 * In-process, the load generator's fetch work runs on the API's one event loop: measured here it needs about
 * 0.4 core for one-event requests (0.1 core for batches), which would be charged to the API — producers run
 * on other machines in production. The child is started the way the API is deployed
 * (`services/api/src/main.ts`, configured through env), so what is measured is what ships.
 * `BENCH_CPU_PROF_DIR=<dir>` starts it with `--cpu-prof`, writing a .cpuprofile there when it stops.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createApiService, loadConfig } from '@warden/api';
import { sql } from 'kysely';
import { createDb, ensureTenant, insertApiKey, insertPendingEvents, type Db } from '@warden/db';
import {
  displayPrefix,
  generateApiKey,
  hashApiKey,
  toTaskEvent,
  type IncomingEvent,
  type TaskEvent,
} from '@warden/domain';
import { createRedis } from '@warden/queue';
import { createTestDatabase, deleteQueuePrefix, testServers } from '@warden/testing';
import {
  CleanupStack,
  chunk,
  createHttpPoster,
  formatTable,
  machineCpuSeconds,
  median,
  medianRun,
  percentile,
  processCpuSeconds,
  runConcurrently,
  runBench,
  type Janitor,
} from './support.js';

const CONCURRENCY = 8;
const ROUNDS = 3;
const BATCH_SIZE = 100;
const SINGLE_EVENTS = 3_000;
const BATCH_EVENTS = 50_000;
const WARMUP_SINGLE_EVENTS = 500;
const WARMUP_BATCH_EVENTS = 10_000;
const GOAL_SINGLE_RATIO = 0.5;
const GOAL_BATCH_RATIO = 0.8;
const TENANT = 'bench';
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

type PhaseName = 'single' | 'batch100' | 'floor' | 'single_floor';

interface PhaseRun {
  events: number;
  requests: number;
  seconds: number;
  eventsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  cpu: CoresUsed;
}

/**
 * Cores each party kept busy during a run (CPU seconds / wall seconds), from /proc; undefined where /proc
 * or the process is not visible. `all` is the whole machine — other work on it included — and `postgres`
 * counts only the backends connected to the bench's own database.
 */
interface CoresUsed {
  all: number | undefined;
  api: number | undefined;
  postgres: number | undefined;
  redis: number | undefined;
  bench: number;
}

interface RunningApi {
  baseUrl: string;
  pid: number;
  /** Warnings the API logged, counted by message (child only; in-process they go straight to stdout). */
  warnings(): Map<string, number>;
  stop(): Promise<void>;
}

/** Fresh, unique ids per phase and round, so every measured insert is a real insert and not a duplicate. */
function makeEvents(label: string, count: number): IncomingEvent[] {
  const ts = new Date().toISOString();
  return Array.from({ length: count }, (_, i) => ({
    event_id: `${label}-${i}`,
    task_id: `bench-task-${i % 1_000}`,
    event_type: 'TASK_STEP_COMPLETED',
    ts,
    payload: {
      step: i,
      risk_indicators: { error_rate: 0.01, resource_usage: 0.42, security_score: 90 },
      result: { warnings: [] },
    },
  }));
}

interface CpuSample {
  machine: { busy: number; total: number } | undefined;
  api: number | undefined;
  postgresByPid: Map<number, number>;
  redis: number | undefined;
  bench: number;
}

/** Samples CPU time of the parties in an ingest: API, Postgres backends of our database, Redis, this process. */
class CpuProbe {
  constructor(
    private readonly apiPid: number,
    private readonly db: Db,
    private readonly redisPid: number | undefined,
  ) {}

  async sample(): Promise<CpuSample> {
    const { rows } = await sql<{
      pid: number;
    }>`select pid from pg_stat_activity where datname = current_database()`.execute(this.db);
    const postgresByPid = new Map<number, number>();
    for (const { pid } of rows) {
      const seconds = processCpuSeconds(pid);
      if (seconds !== undefined) postgresByPid.set(pid, seconds);
    }
    const usage = process.cpuUsage();
    return {
      machine: machineCpuSeconds(),
      api: processCpuSeconds(this.apiPid),
      postgresByPid,
      redis: this.redisPid === undefined ? undefined : processCpuSeconds(this.redisPid),
      bench: (usage.user + usage.system) / 1e6,
    };
  }
}

function coresUsed(before: CpuSample, after: CpuSample, seconds: number): CoresUsed {
  const rate = (from: number | undefined, to: number | undefined) =>
    from === undefined || to === undefined ? undefined : (to - from) / seconds;
  let postgres = 0;
  // A backend that connected during the run counts from zero; one that left is lost (pools rarely do either).
  for (const [pid, cpu] of after.postgresByPid) postgres += cpu - (before.postgresByPid.get(pid) ?? 0);
  return {
    all: rate(before.machine?.busy, after.machine?.busy),
    api: rate(before.api, after.api),
    postgres: after.postgresByPid.size > 0 ? postgres / seconds : undefined,
    redis: rate(before.redis, after.redis),
    bench: (after.bench - before.bench) / seconds,
  };
}

/**
 * POSTs pre-serialised bodies with CONCURRENCY requests in flight over kept-alive connections. A plain
 * node:http client rather than the SDK, the bodies built before the clock starts: the load generator spends
 * as little CPU as it can on a machine it shares with the API and Postgres.
 */
async function postBodies(
  api: RunningApi,
  probe: CpuProbe,
  apiKey: string,
  bodies: readonly string[],
  events: number,
): Promise<PhaseRun> {
  const url = `${api.baseUrl}/v1/events`;
  const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };
  let accepted = 0;
  const before = await probe.sample();
  const http = createHttpPoster(CONCURRENCY);
  const load = await runConcurrently(bodies, CONCURRENCY, async (body) => {
    const { status, text } = await http.post(url, headers, body);
    if (status !== 202) throw new Error(`POST /v1/events answered ${status}: ${text.slice(0, 300)}`);
    accepted += (JSON.parse(text) as { accepted: number }).accepted;
  }).finally(() => http.close());
  const after = await probe.sample();
  // Fresh ids every phase: anything but all-accepted means the measurement is not what it claims to be.
  if (accepted !== events)
    throw new Error(`expected ${events} events accepted, the API accepted ${accepted}`);
  return toPhaseRun(events, bodies.length, load, coresUsed(before, after, load.seconds));
}

/** The floor: the same rows, the same statement (`insertPendingEvents`), straight to Postgres. */
async function insertBatches(
  db: Db,
  probe: CpuProbe,
  batches: readonly TaskEvent[][],
  events: number,
): Promise<PhaseRun> {
  let inserted = 0;
  const before = await probe.sample();
  const load = await runConcurrently(batches, CONCURRENCY, async (batch) => {
    const fresh = await insertPendingEvents(db, batch);
    inserted += fresh.length;
  });
  const after = await probe.sample();
  if (inserted !== events) throw new Error(`expected ${events} rows inserted, Postgres inserted ${inserted}`);
  return toPhaseRun(events, batches.length, load, coresUsed(before, after, load.seconds));
}

function toPhaseRun(
  events: number,
  requests: number,
  load: { seconds: number; latenciesMs: number[] },
  cpu: CoresUsed,
): PhaseRun {
  return {
    events,
    requests,
    seconds: load.seconds,
    eventsPerSecond: events / load.seconds,
    p50Ms: percentile(load.latenciesMs, 50),
    p99Ms: percentile(load.latenciesMs, 99),
    cpu,
  };
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function startChildApi(
  env: Record<string, string>,
  cpuProfileDir: string | undefined,
): Promise<RunningApi> {
  const port = await freeLoopbackPort();
  const profiling = cpuProfileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`];
  const child: ChildProcess = spawn(
    process.execPath,
    [...profiling, '--import', 'tsx', 'services/api/src/main.ts'],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  // Under load the API warns once per request (e.g. each deferred enqueue); a count reads better than a
  // screen of JSON. Errors and anything that is not a pino line still go to stderr as they come.
  const warnings = new Map<string, number>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let entry: { level?: unknown; msg?: unknown; err?: { message?: unknown } } | undefined;
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      entry = undefined;
    }
    if (entry?.level === 'warn') {
      const key = `${String(entry.msg)}${entry.err?.message ? ` (${String(entry.err.message)})` : ''}`;
      warnings.set(key, (warnings.get(key) ?? 0) + 1);
    } else if (entry?.level === 'error' || entry?.level === 'fatal' || entry === undefined) {
      process.stderr.write(`api: ${line}\n`);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  const stop = async () => {
    if (exitCode !== undefined) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exitCode !== undefined)
      throw new Error(`the API child process exited with code ${exitCode} before it was ready`);
    const ready = await fetch(`${baseUrl}/readyz`).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error('the API child process was not ready within 30 s');
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { baseUrl, pid: child.pid!, warnings: () => warnings, stop };
}

async function startInProcessApi(env: Record<string, string>): Promise<RunningApi> {
  const api = createApiService(loadConfig({ ...env, PORT: '0' }));
  await api.start();
  return {
    baseUrl: `http://127.0.0.1:${api.port()}`,
    pid: process.pid,
    warnings: () => new Map(),
    stop: () => api.stop(),
  };
}

function formatRate(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function formatCores(value: number | undefined): string {
  return value === undefined ? 'n/a' : value.toFixed(2);
}

/** The pid of the Redis server when it runs on this machine (the bench only ever talks to loopback). */
async function localRedisPid(url: string): Promise<number | undefined> {
  const redis = createRedis(url, 'general');
  try {
    const pid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
    return Number.isInteger(pid) && processCpuSeconds(pid) !== undefined ? pid : undefined;
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}

async function main(cleanup: CleanupStack, janitor: Janitor): Promise<void> {
  const mode = process.env.BENCH_API === 'in-process' ? 'in-process' : 'child';
  const cpuProfileDir = process.env.BENCH_CPU_PROF_DIR;
  const started = performance.now();
  console.log(
    `ingest bench: API ${mode}, ${CONCURRENCY} concurrent clients, ${ROUNDS} rounds, median reported`,
  );

  const prefix = `bench-${randomUUID()}`;
  janitor.watch({ queuePrefix: prefix });
  cleanup.push('delete queue keys', () => deleteQueuePrefix(prefix));
  const database = await createTestDatabase();
  janitor.watch({ databaseUrl: database.url });
  cleanup.push('drop database', () => database.drop());

  await ensureTenant(database.db, TENANT);
  const apiKey = generateApiKey();
  await insertApiKey(database.db, {
    tenantId: TENANT,
    name: 'bench',
    owner: 'bench',
    keyHash: hashApiKey(apiKey),
    keyPrefix: displayPrefix(apiKey),
    scopes: ['events:write'],
  });

  const env = {
    DATABASE_URL: database.url,
    REDIS_URL: testServers.redisUrl,
    QUEUE_PREFIX: prefix,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
  };
  if (cpuProfileDir !== undefined && mode !== 'child')
    throw new Error('BENCH_CPU_PROF_DIR needs the API as a child process');
  const api = mode === 'child' ? await startChildApi(env, cpuProfileDir) : await startInProcessApi(env);
  if (mode === 'child') janitor.watch({ pids: [api.pid] });
  cleanup.push('stop API', () => api.stop());
  // As many connections as the API gets concurrent requests, so both sides have the same parallelism.
  const floorDb = createDb({
    url: database.url,
    maxConnections: CONCURRENCY,
    applicationName: 'bench-floor',
  });
  cleanup.push('close floor pool', () => floorDb.destroy());
  const probe = new CpuProbe(api.pid, floorDb, await localRedisPid(testServers.redisUrl));

  const runId = randomUUID().slice(0, 8);
  const singleBodies = (label: string, count: number) =>
    makeEvents(`${runId}-${label}`, count).map((event) => JSON.stringify(event));
  const batchBodies = (label: string, count: number) =>
    chunk(makeEvents(`${runId}-${label}`, count), BATCH_SIZE).map((events) => JSON.stringify({ events }));
  const floorBatches = (label: string, count: number, size = BATCH_SIZE) => {
    const receivedAt = new Date();
    const events = makeEvents(`${runId}-${label}`, count).map((event) =>
      toTaskEvent(event, TENANT, 'http', receivedAt),
    );
    return chunk(events, size);
  };

  // Warm-up, not counted: JIT, connection pools, keep-alive sockets, the auth cache and Postgres' caches.
  await postBodies(
    api,
    probe,
    apiKey,
    singleBodies('warm-single', WARMUP_SINGLE_EVENTS),
    WARMUP_SINGLE_EVENTS,
  );
  await postBodies(api, probe, apiKey, batchBodies('warm-batch', WARMUP_BATCH_EVENTS), WARMUP_BATCH_EVENTS);
  await insertBatches(floorDb, probe, floorBatches('warm-floor', WARMUP_BATCH_EVENTS), WARMUP_BATCH_EVENTS);
  await insertBatches(
    floorDb,
    probe,
    floorBatches('warm-single-floor', WARMUP_SINGLE_EVENTS, 1),
    WARMUP_SINGLE_EVENTS,
  );

  const runs: Record<PhaseName, PhaseRun[]> = { single: [], batch100: [], floor: [], single_floor: [] };
  // Phases interleave round by round, so drift (table growth, autovacuum, a noisy neighbour) hits all alike.
  for (let round = 1; round <= ROUNDS; round++) {
    const single = await postBodies(
      api,
      probe,
      apiKey,
      singleBodies(`single-${round}`, SINGLE_EVENTS),
      SINGLE_EVENTS,
    );
    const batch = await postBodies(
      api,
      probe,
      apiKey,
      batchBodies(`batch-${round}`, BATCH_EVENTS),
      BATCH_EVENTS,
    );
    const floor = await insertBatches(
      floorDb,
      probe,
      floorBatches(`floor-${round}`, BATCH_EVENTS),
      BATCH_EVENTS,
    );
    // The single floor: the same rows one INSERT each, as the API's single path does.
    const singleFloor = await insertBatches(
      floorDb,
      probe,
      floorBatches(`single-floor-${round}`, SINGLE_EVENTS, 1),
      SINGLE_EVENTS,
    );
    runs.single.push(single);
    runs.batch100.push(batch);
    runs.floor.push(floor);
    runs.single_floor.push(singleFloor);
    console.log(
      `round ${round}/${ROUNDS}: single ${formatRate(single.eventsPerSecond)}/s, batch100 ${formatRate(batch.eventsPerSecond)}/s, floor ${formatRate(floor.eventsPerSecond)}/s, single floor ${formatRate(singleFloor.eventsPerSecond)}/s`,
    );
  }

  const phases: PhaseName[] = ['single', 'single_floor', 'batch100', 'floor'];
  const rows = phases.map((phase) => {
    const run = medianRun(runs[phase], (r) => r.eventsPerSecond);
    return [
      phase,
      run.events.toLocaleString('en-US'),
      run.requests.toLocaleString('en-US'),
      run.seconds.toFixed(2),
      formatRate(run.eventsPerSecond),
      run.p50Ms.toFixed(1),
      run.p99Ms.toFixed(1),
      formatCores(run.cpu.all),
      formatCores(run.cpu.api),
      formatCores(run.cpu.postgres),
      formatCores(run.cpu.redis),
      formatCores(run.cpu.bench),
      runs[phase].map((r) => formatRate(r.eventsPerSecond)).join(' / '),
    ];
  });
  console.log('');
  console.log(
    formatTable(
      [
        'phase',
        'events',
        'requests',
        'seconds',
        'events/s',
        'p50 ms',
        'p99 ms',
        'cpu all',
        'api',
        'pg',
        'redis',
        'bench',
        'events/s per round',
      ],
      rows,
    ),
  );
  console.log('');
  console.log(
    'Median of the rounds. p50/p99: one request (floor: one INSERT of 100 rows; single_floor: of one row).',
  );
  console.log(
    'cpu: cores busy during that run — whole machine (other work included), API process, Postgres backends',
  );
  console.log(
    `of the bench database, Redis, this load generator (${mode === 'in-process' ? 'which includes the API' : 'API excluded'}).`,
  );

  for (const [message, count] of api.warnings()) console.log(`API warned ${count}x: ${message}`);

  const single = median(runs.single.map((r) => r.eventsPerSecond));
  const batch = median(runs.batch100.map((r) => r.eventsPerSecond));
  const floor = median(runs.floor.map((r) => r.eventsPerSecond));
  const singleFloor = median(runs.single_floor.map((r) => r.eventsPerSecond));
  const ratio = batch / floor;
  const singleRatio = single / singleFloor;
  console.log(`total time ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(
    `goal single >= ${GOAL_SINGLE_RATIO} x single floor: ${singleRatio >= GOAL_SINGLE_RATIO ? 'met' : 'NOT met'} (${singleRatio.toFixed(2)} x); goal batch100 >= ${GOAL_BATCH_RATIO} x floor: ${ratio >= GOAL_BATCH_RATIO ? 'met' : 'NOT met'} (${ratio.toFixed(2)} x)`,
  );
  console.log(
    `RESULT ingest single=${Math.round(single)} batch100=${Math.round(batch)} floor=${Math.round(floor)} ratio=${ratio.toFixed(2)} single_floor=${Math.round(singleFloor)} single_ratio=${singleRatio.toFixed(2)}`,
  );
}

await runBench('ingest', main);
