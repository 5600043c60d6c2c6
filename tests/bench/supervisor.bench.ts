/**
 * `pnpm bench:supervisor` — how fast the supervisor decides events against the floor, and how long a decision
 * takes at half its measured maximum (docs/supervisor.md; goals: ratio ≥ 2.0, decision lag p99 ≤ 50 ms at half load).
 *
 * 1. Warden: 50,000 events across several tenants, pre-enqueued as the API does for single-event requests
 *    (inbox row, then a job under the event's derived id: as many jobs as events, as the floor gets) while the
 *    queue is paused; on resume the (warmed-up) supervisor-worker does the full path: claim, decide, one group
 *    transaction with decisions, task updates, gates and hash-chained audit rows, publish.
 * 2. Decision lag: a paced producer (same API path) at half of Warden's measured rate for ~20 s while the same
 *    worker runs; lag is `processed_at − source_event_ts` of each audit row, split into its parts.
 * 3. The same throughput with a single tenant (every group contends for one audit chain head).
 * 4. The same throughput through the API's batch path: requests of 100 events, one `events` job each.
 * 5. The floor: a bare BullMQ Worker over the same number of the same jobs, one Postgres transaction per job
 *    (insert into an inbox-like table, then one update; node-postgres, nothing in between). Each concurrency
 *    is tried on 10,000 jobs first; the best then runs over all of them right after step 1, so that both see
 *    the same machine (on a shared machine the speed drifts by tens of percent within minutes).
 * The RESULT line compares 1 with 5 (one job per event on both sides) and reports the lag of 2.
 *
 * The supervisor runs as a child process (`services/supervisor-worker/src/main.ts`, configured through env) as
 * it is deployed: the paced producer of step 2 then has an event loop of its own, as the API has in
 * production, instead of adding its work to the worker's. The floor runs in this process, which does nothing
 * else meanwhile. Self-contained: own database and queue prefixes, removed at the end, even on failure or
 * Ctrl-C. Loopback only; every loop is bounded by a count or a deadline.
 *
 * Environment: WORKER_CONCURRENCY, MAX_GROUP_SIZE, MAX_GROUPS_IN_FLIGHT, DB_POOL_SIZE are handed to the
 * worker (unset: its defaults). BENCH_EVENTS (50000), BENCH_TENANTS (8), BENCH_FLOOR_CONCURRENCY ("8,32,64"),
 * BENCH_LAG_SECONDS (20), BENCH_SINGLE_TENANT_EVENTS (10000; 0 skips that phase), BENCH_BATCH_EVENTS (20000;
 * 0 skips that phase), BENCH_CPU_PROF_DIR (start the worker with --cpu-prof, profiles written there when it
 * stops).
 *
 * Tuning sweep: `BENCH_SWEEP="WORKER_CONCURRENCY=256,MAX_GROUP_SIZE=128;MAX_GROUPS_IN_FLIGHT=1;..."` measures only
 * Warden's throughput (BENCH_EVENTS each, one fresh worker process per setting, settings in turn, the list
 * BENCH_SWEEP_ROUNDS times over, median reported) and prints no RESULT line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { insertPendingEvents, type Db } from '@warden/db';
import type { TaskEvent } from '@warden/domain';
import {
  QUEUE_NAMES,
  WardenQueues,
  createRedis,
  decisionStreamKey,
  eventBatchJobId,
  eventJobId,
  type createValidatedWorker,
} from '@warden/queue';
import { createTestDatabase, deleteQueuePrefix, testServers } from '@warden/testing';
import {
  chunk,
  formatTable,
  machineCpuSeconds,
  medianRun,
  percentile,
  processCpuSeconds,
} from './support.js';

const intFromEnv = (name: string, fallback: number) => {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0)
    throw new Error(`${name} must be a non-negative integer, got "${value}"`);
  return parsed;
};

const EVENTS = intFromEnv('BENCH_EVENTS', 50_000);
const TENANT_COUNT = Math.max(1, intFromEnv('BENCH_TENANTS', 8));
const SINGLE_TENANT_EVENTS = intFromEnv('BENCH_SINGLE_TENANT_EVENTS', 10_000);
const BATCH_EVENTS = intFromEnv('BENCH_BATCH_EVENTS', 20_000);
const LAG_SECONDS = Math.max(1, intFromEnv('BENCH_LAG_SECONDS', 20));
const FLOOR_CONCURRENCY = (process.env.BENCH_FLOOR_CONCURRENCY ?? '8,32,64')
  .split(',')
  .map((c) => Number(c.trim()));
if (FLOOR_CONCURRENCY.some((c) => !Number.isInteger(c) || c < 1))
  throw new Error(
    `BENCH_FLOOR_CONCURRENCY must list positive integers, got "${process.env.BENCH_FLOOR_CONCURRENCY}"`,
  );
const CPU_PROFILE_DIR = process.env.BENCH_CPU_PROF_DIR;
/** The floor gets one Postgres connection per concurrent job, up to this many. */
const FLOOR_MAX_CONNECTIONS = 32;
const EVENTS_PER_TASK = 10;
const WARMUP_EVENTS = 3_000;
/** Each floor concurrency is tried on this many jobs; the best one then runs over all of them. */
const FLOOR_PROBE_EVENTS = 10_000;
const GOAL_RATIO = 2.0;
const GOAL_LAG_P99_MS = 50;
/** Any phase that has not finished within this is a failure, not a hang. */
const PHASE_DEADLINE_MS = 180_000;
const WORKER_TUNING = [
  'WORKER_CONCURRENCY',
  'MAX_GROUP_SIZE',
  'MAX_GROUPS_IN_FLIGHT',
  'DB_POOL_SIZE',
] as const;
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

// The tests package does not list bullmq; the floor uses the copy the queue package (and so Warden) runs on.
type BullWorker = ReturnType<typeof createValidatedWorker>;
type RedisClient = ReturnType<typeof createRedis>;
type WorkerConstructor = new (
  queue: string,
  processor: (job: { data: TaskEvent }) => Promise<void>,
  options: { connection: RedisClient; prefix: string; concurrency: number },
) => BullWorker;
const { Worker } = createRequire(new URL('../../packages/queue/package.json', import.meta.url))('bullmq') as {
  Worker: WorkerConstructor;
};
// Likewise pg, from the db package: the floor talks to Postgres with nothing in between.
interface PgClient {
  query(text: string, values?: unknown[]): Promise<unknown>;
  release(): void;
}
type PgPoolConstructor = new (options: {
  connectionString: string;
  max: number;
  application_name: string;
}) => {
  connect(): Promise<PgClient>;
  query(text: string): Promise<unknown>;
  on(event: 'error', listener: () => void): void;
  end(): Promise<void>;
};
const { Pool } = createRequire(new URL('../../packages/db/package.json', import.meta.url))('pg') as {
  Pool: PgPoolConstructor;
};
const FLOOR_INSERT = `insert into floor_inbox (tenant_id, event_id, task_id, event_type, payload, event_ts) values ($1, $2, $3, $4, $5, $6)
                      on conflict (tenant_id, event_id) do nothing`;
const FLOOR_UPDATE = `update floor_inbox set status = 'completed', processed_at = now() where tenant_id = $1 and event_id = $2`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Cleanups run last-in first-out, each at most once, each failure reported without skipping the rest. */
class CleanupStack {
  private readonly steps: { name: string; run: () => Promise<void> }[] = [];
  private running: Promise<void> | undefined;

  push(name: string, run: () => Promise<void>): void {
    this.steps.push({ name, run });
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (let step = this.steps.pop(); step; step = this.steps.pop()) {
        try {
          await step.run();
        } catch (error) {
          console.error(
            `cleanup: ${step.name} failed: ${error instanceof Error ? error.message : String(error)}`,
          );
        }
      }
    })();
    return this.running;
  }
}

/** A small seeded PRNG (mulberry32), so every run decides the same mix of events. */
function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` events of `count / 10` tasks spread over the tenants, in a realistic mix: TASK_CREATED first (some
 * redlines that block, destructive rules that pause), then steps (some risky), failures (retryable or not),
 * state changes and types without a policy. Interleaved across tasks, each task's events in order.
 */
function makeEvents(label: string, count: number, tenants: readonly string[], seed: number): TaskEvent[] {
  const random = createRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const timed: Array<{ at: number; event: Omit<TaskEvent, 'ts' | 'source'> }> = [];
  const tasks = Math.ceil(count / EVENTS_PER_TASK);
  for (let t = 0; t < tasks; t++) {
    const tenant_id = tenants[t % tenants.length]!;
    const task_id = `${label}-task-${t}`;
    let at = random() * tasks;
    const kind = random();
    const created: Record<string, unknown> = {
      run_mode: pick(['assisted', 'supervised', 'autonomous']),
      max_retries: pick([2, 3, 5]),
      agent_spec: { name: `agent-${t % 37}`, capabilities: ['file_read', 'shell', 'network'] },
      command_spec: { name: 'build', command: 'npm', args: ['run', 'build'] },
    };
    if (kind < 0.1)
      created.command_spec = {
        name: 'install',
        command: 'curl',
        args: ['-sSL', 'https://get.example.com/i.sh', '|', 'sh'],
      };
    else if (kind < 0.2)
      created.rule_spec = { name: 'cleanup', condition: 'age > 30d', action: 'delete stale artifacts' };
    for (let k = 0; k < EVENTS_PER_TASK && timed.length < count; k++) {
      const base = { event_id: `${label}-${t}-${k}`, tenant_id, task_id };
      at += 1 + random() * 10;
      const roll = random();
      let event: Omit<TaskEvent, 'ts' | 'source'>;
      if (k === 0) event = { ...base, event_type: 'TASK_CREATED', payload: created };
      else if (roll < 0.55) {
        const risky = random();
        event = {
          ...base,
          event_type: 'TASK_STEP_COMPLETED',
          payload: {
            step: { index: k, mode: 'assisted', tool: 'shell' },
            risk_indicators: {
              error_rate: risky < 0.15 ? 0.45 : 0.02,
              resource_usage: risky < 0.08 ? 0.93 : 0.4,
              security_score: 88,
            },
            result: { warnings: random() < 0.1 ? ['slow dependency resolution'] : [] },
          },
        };
      } else if (roll < 0.72) {
        event = {
          ...base,
          event_type: 'TASK_FAILED',
          payload: pick([
            { error_type: 'network_timeout', error_message: 'upstream timed out' },
            { error_type: 'permission_denied', error_message: 'cannot write /srv/app' },
            { error_message: 'connection reset by peer' },
          ]),
        };
      } else if (roll < 0.85) {
        event = { ...base, event_type: 'TASK_STATE_CHANGED', payload: { from: 'running', to: 'waiting' } };
      } else {
        event = { ...base, event_type: pick(['AGENT_HEARTBEAT', 'TOOL_CALLED']), payload: { seq: k } };
      }
      timed.push({ at, event });
    }
  }
  const ts = new Date().toISOString();
  return timed.sort((a, b) => a.at - b.at).map(({ event }) => ({ ...event, ts, source: 'http' as const }));
}

/**
 * As `POST /v1/events` does for single-event requests: the inbox row first (durable), then a job under the
 * event's derived id. Inserted 500 rows a statement here, to load the queue quickly; one job per event either way.
 */
async function ingestAsSingleEvents(
  db: Db,
  queues: WardenQueues,
  events: readonly TaskEvent[],
): Promise<void> {
  const fresh = await insertPendingEvents(db, events);
  if (fresh.length === 0) return;
  await queues.enqueueBulk(
    QUEUE_NAMES.supervisorEvents,
    'event',
    fresh.map((event) => ({
      payload: event,
      options: { jobId: eventJobId(event.tenant_id, event.event_id) },
    })),
  );
}

/**
 * As `POST /v1/events` does for batch requests: `size` events of one tenant per request, their inbox rows, then
 * one `events` job per request under the batch's derived id.
 */
async function ingestAsBatchRequests(
  db: Db,
  queues: WardenQueues,
  events: readonly TaskEvent[],
  size: number,
): Promise<void> {
  const byTenant = new Map<string, TaskEvent[]>();
  for (const event of events)
    byTenant.set(event.tenant_id, [...(byTenant.get(event.tenant_id) ?? []), event]);
  for (const request of [...byTenant.values()].flatMap((tenantEvents) => chunk(tenantEvents, size))) {
    const fresh = await insertPendingEvents(db, request);
    if (fresh.length === 0) continue;
    const jobId = eventBatchJobId(
      fresh[0]!.tenant_id,
      fresh.map((event) => event.event_id),
    );
    await queues.enqueue(QUEUE_NAMES.supervisorEvents, 'events', { events: fresh }, { jobId });
  }
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

interface RunningWorker {
  pid: number;
  /** Groups committed and events in them so far, from the worker's `supervisor_group_size` histogram. */
  groups(): Promise<{ count: number; events: number }>;
  stop(): Promise<void>;
}

async function startWorkerProcess(env: Record<string, string>): Promise<RunningWorker> {
  const port = await freeLoopbackPort();
  const profiling = CPU_PROFILE_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${CPU_PROFILE_DIR}`];
  const child: ChildProcess = spawn(
    process.execPath,
    [...profiling, '--import', 'tsx', 'services/supervisor-worker/src/main.ts'],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, OPS_PORT: String(port) },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  let exitCode: number | string | null | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exitCode = code ?? signal;
      resolve();
    }),
  );
  const stop = async () => {
    if (exitCode !== undefined) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exitCode !== undefined)
      throw new Error(`the supervisor-worker exited (${String(exitCode)}) before it was ready`);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) }).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error('the supervisor-worker was not ready within 60 s');
    }
    await sleep(100);
  }
  const groups = async () => {
    const text = await (
      await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) })
    ).text();
    const read = (name: string) =>
      Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    return { count: read('supervisor_group_size_count'), events: read('supervisor_group_size_sum') };
  };
  return { pid: child.pid!, groups, stop };
}

/** Cores each party kept busy during a phase (CPU seconds / wall seconds), from /proc. */
interface CoresUsed {
  machine: number | undefined;
  consumer: number | undefined;
  postgres: number | undefined;
  redis: number | undefined;
  /** This process, when it is not the consumer (the paced producer, polling). */
  bench: number;
  /**
   * Postgres checkpoints during the phase, server-wide. Other users' DROP DATABASE forces one each time; its
   * I/O slows every statement and shows in the figures, not in the cores.
   */
  checkpoints: number;
}

interface CpuSample {
  machine: number | undefined;
  consumer: number | undefined;
  consumerIsBench: boolean;
  postgres: Map<number, number>;
  redis: number | undefined;
  bench: number;
  checkpoints: number;
  at: number;
}

/** Samples CPU time of the consumer (worker process or this one), Postgres backends of our database and Redis. */
class CpuProbe {
  constructor(
    private readonly db: Db,
    private readonly redisPid: number | undefined,
  ) {}

  async sample(consumerPid: number): Promise<CpuSample> {
    const { rows } = await sql<{
      pid: number;
    }>`select pid from pg_stat_activity where datname = current_database()`.execute(this.db);
    const { rows: bgwriter } = await sql<{ checkpoints: string }>`
      select checkpoints_timed + checkpoints_req as checkpoints from pg_stat_bgwriter`.execute(this.db);
    const postgres = new Map<number, number>();
    for (const { pid } of rows) {
      const seconds = processCpuSeconds(pid);
      if (seconds !== undefined) postgres.set(pid, seconds);
    }
    return {
      machine: machineCpuSeconds()?.busy,
      consumer: processCpuSeconds(consumerPid),
      postgres,
      redis: this.redisPid === undefined ? undefined : processCpuSeconds(this.redisPid),
      consumerIsBench: consumerPid === process.pid,
      bench: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
      checkpoints: Number(bgwriter[0]?.checkpoints ?? 0),
      at: performance.now(),
    };
  }

  static cores(before: CpuSample, after: CpuSample): CoresUsed {
    const seconds = (after.at - before.at) / 1000;
    const rate = (from: number | undefined, to: number | undefined) =>
      from === undefined || to === undefined ? undefined : (to - from) / seconds;
    let postgres = 0;
    for (const [pid, cpu] of after.postgres) postgres += cpu - (before.postgres.get(pid) ?? 0);
    return {
      machine: rate(before.machine, after.machine),
      consumer: rate(before.consumer, after.consumer),
      postgres: after.postgres.size > 0 ? postgres / seconds : undefined,
      redis: rate(before.redis, after.redis),
      bench: after.consumerIsBench ? 0 : (after.bench - before.bench) / seconds,
      checkpoints: after.checkpoints - before.checkpoints,
    };
  }
}

/**
 * What the worker's Postgres connections are doing, sampled from pg_stat_activity every 50 ms: running a
 * statement, waiting for a lock (another group's transaction), idle in a transaction (waiting for the worker
 * process: its CPU, Redis, or its next statement), or idle in the pool. Says where a group's time goes.
 */
class ConnectionStateSampler {
  private readonly counts = new Map<string, number>();
  private samples = 0;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly db: Db) {}

  start(): void {
    this.running = (async () => {
      while (!this.stopped) {
        const { rows } = await sql<{ state: string }>`
          select case when state = 'active' and wait_event_type = 'Lock' then 'waiting for a lock (' || wait_event || ')'
                      when state = 'active' and wait_event_type is not null and wait_event_type <> 'Client' then 'running (' || wait_event_type || ')'
                      when state = 'active' then 'running'
                      else coalesce(state, 'unknown') end as state
            from pg_stat_activity where datname = current_database() and application_name = 'supervisor-worker'`.execute(
          this.db,
        );
        this.samples += 1;
        for (const { state } of rows) this.counts.set(state, (this.counts.get(state) ?? 0) + 1);
        await sleep(50);
      }
    })();
  }

  /** Mean connections in each state over the samples, busiest first. */
  async stop(): Promise<Array<[string, number]>> {
    this.stopped = true;
    await this.running;
    return [...this.counts]
      .map(([state, n]): [string, number] => [state, n / Math.max(1, this.samples)])
      .sort((a, b) => b[1] - a[1]);
  }
}

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

interface ThroughputRun {
  label: string;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  cpu: CoresUsed;
  /** Mean events per group transaction (Warden only). */
  meanGroup?: number;
  /** Mean worker connections in each state (Warden only). */
  connections?: Array<[string, number]>;
  note: string;
}

/**
 * Decisions ever published on the prefix's decision stream: `entries-added` of XINFO STREAM, which trimming
 * (the stream is capped) does not lower. O(1) in Redis, so polling it costs the measured run nothing.
 */
async function decisionsPublished(redis: RedisClient, prefix: string): Promise<number> {
  const key = decisionStreamKey(prefix);
  if ((await redis.exists(key)) === 0) return 0;
  const info = (await redis.xinfo('STREAM', key)) as unknown[];
  const at = info.indexOf('entries-added');
  return at >= 0 ? Number(info[at + 1]) : await redis.xlen(key);
}

/** Waits until `target` decisions have been published on the prefix's decision stream. */
async function waitForDecisions(
  redis: RedisClient,
  prefix: string,
  target: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + PHASE_DEADLINE_MS;
  for (;;) {
    const published = await decisionsPublished(redis, prefix);
    if (published >= target) return;
    if (Date.now() > deadline)
      throw new Error(
        `${what}: only ${published} of ${target} decisions after ${PHASE_DEADLINE_MS / 1000} s`,
      );
    await sleep(100);
  }
}

/**
 * Warden's throughput over pre-enqueued events. The queue is paused while the events are ingested as the API
 * does, then resumed: the worker (already running and warm, as the floor's is) finds them all waiting. Timed
 * from the first claim to the last decision (database timestamps), as the floor from its first job to its last.
 */
async function measureWarden(
  label: string,
  context: WardenContext,
  events: readonly TaskEvent[],
  ingest: 'single' | 'batch100' = 'single',
): Promise<ThroughputRun> {
  const { db, queues, redis, probe, prefix, worker } = context;
  const queue = queues.get(QUEUE_NAMES.supervisorEvents);
  await queue.pause();
  try {
    if (ingest === 'batch100') await ingestAsBatchRequests(db, queues, events, 100);
    else for (const batch of chunk(events, 500)) await ingestAsSingleEvents(db, queues, batch);
  } finally {
    await queue.resume();
  }
  const sampler = new ConnectionStateSampler(db);
  sampler.start();
  const before = await probe.sample(worker.pid);
  const groupsBefore = await worker.groups();
  context.expectedDecisions += events.length;
  await waitForDecisions(redis, prefix, context.expectedDecisions, label);
  const after = await probe.sample(worker.pid);
  const groupsAfter = await worker.groups();
  const connections = await sampler.stop();
  const eventIds = events.map((e) => e.event_id);
  const window = await sql<{ first_claim: Date; last_decision: Date; decided: string }>`
    select (select min(claimed_at) from supervisor_inbox where event_id = any(${eventIds}::text[])) as first_claim,
           max(processed_at) as last_decision, count(*) as decided
      from task_audits where event_id = any(${eventIds}::text[]) and decision_id is not null`.execute(db);
  const row = window.rows[0]!;
  if (Number(row.decided) !== events.length)
    throw new Error(`${label}: ${row.decided} audited decisions for ${events.length} events`);
  const seconds = (row.last_decision.getTime() - row.first_claim.getTime()) / 1000;
  const meanGroup = (groupsAfter.events - groupsBefore.events) / (groupsAfter.count - groupsBefore.count);
  return {
    label,
    events: events.length,
    seconds,
    eventsPerSecond: events.length / seconds,
    cpu: CpuProbe.cores(before, after),
    meanGroup,
    connections,
    note: context.settings,
  };
}

interface WardenContext {
  db: Db;
  queues: WardenQueues;
  redis: RedisClient;
  probe: CpuProbe;
  prefix: string;
  worker: RunningWorker;
  settings: string;
  /** Decisions published on the prefix so far, counting the phase being waited for. */
  expectedDecisions: number;
}

function describeWorkerEnv(env: Record<string, string>): string {
  const set = WORKER_TUNING.filter((name) => env[name] !== undefined).map((name) => `${name}=${env[name]}`);
  return set.length > 0 ? set.join(' ') : 'defaults';
}

/** The paced producer: `rate` events/s through the API path for `seconds`, each stamped with its send time. */
async function producePaced(
  db: Db,
  queues: WardenQueues,
  events: readonly TaskEvent[],
  rate: number,
): Promise<{ sent: number; seconds: number; maxBehind: number }> {
  const started = performance.now();
  let sent = 0;
  let maxBehind = 0;
  while (sent < events.length) {
    const elapsed = (performance.now() - started) / 1000;
    const due = Math.min(events.length, Math.floor(elapsed * rate));
    if (due > sent) {
      maxBehind = Math.max(maxBehind, due - sent);
      const ts = new Date().toISOString();
      const batch = events.slice(sent, due).map((event) => ({ ...event, ts }));
      await ingestAsSingleEvents(db, queues, batch);
      sent = due;
    }
    await sleep(10);
  }
  return { sent, seconds: (performance.now() - started) / 1000, maxBehind };
}

/**
 * The floor: a bare BullMQ Worker, one Postgres transaction per job — insert into an inbox-like table, then
 * one update — over the same jobs Warden gets, on a queue prefix of its own.
 */
async function measureFloor(
  databaseUrl: string,
  probe: CpuProbe,
  events: readonly TaskEvent[],
  concurrency: number,
  cleanup: CleanupStack,
): Promise<ThroughputRun> {
  const prefix = `bench-floor-${randomUUID()}`;
  cleanup.push(`delete floor queue keys ${prefix}`, () => deleteQueuePrefix(prefix));
  const connections = Math.min(concurrency, FLOOR_MAX_CONNECTIONS);
  const pool = new Pool({ connectionString: databaseUrl, max: connections, application_name: 'bench-floor' });
  pool.on('error', () => {});
  const producerRedis = createRedis(testServers.redisUrl, 'general');
  const queues = new WardenQueues({ connection: producerRedis, prefix });
  const workerRedis = createRedis(testServers.redisUrl, 'worker');
  let worker: BullWorker | undefined;
  try {
    await pool.query('truncate floor_inbox');
    for (const batch of chunk(events, 1000)) {
      await queues.enqueueBulk(
        QUEUE_NAMES.supervisorEvents,
        'event',
        batch.map((event) => ({
          payload: event,
          options: { jobId: eventJobId(event.tenant_id, event.event_id) },
        })),
      );
    }
    let done = 0;
    let firstStart = 0;
    let lastEnd = 0;
    let failure: unknown;
    let allDone!: () => void;
    const finished = new Promise<void>((resolve) => (allDone = resolve));
    const before = await probe.sample(process.pid);
    worker = new Worker(
      QUEUE_NAMES.supervisorEvents,
      async (job) => {
        firstStart ||= performance.now();
        const event = job.data;
        const client = await pool.connect();
        try {
          await client.query('begin');
          await client.query(FLOOR_INSERT, [
            event.tenant_id,
            event.event_id,
            event.task_id,
            event.event_type,
            JSON.stringify(event.payload),
            event.ts,
          ]);
          await client.query(FLOOR_UPDATE, [event.tenant_id, event.event_id]);
          await client.query('commit');
        } catch (error) {
          await client.query('rollback').catch(() => {});
          throw error;
        } finally {
          client.release();
        }
        lastEnd = performance.now();
        if (++done === events.length) allDone();
      },
      { connection: workerRedis, prefix, concurrency },
    );
    worker.on('error', (error) => (failure ??= error));
    worker.on('failed', (_job, error) => (failure ??= error));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `floor c=${concurrency}: ${done} of ${events.length} jobs after ${PHASE_DEADLINE_MS / 1000} s`,
            ),
          ),
        PHASE_DEADLINE_MS,
      );
    });
    await Promise.race([finished, deadline]).finally(() => clearTimeout(timer));
    const after = await probe.sample(process.pid);
    if (failure) throw failure;
    const seconds = (lastEnd - firstStart) / 1000;
    return {
      label: `floor c=${concurrency}`,
      events: events.length,
      seconds,
      eventsPerSecond: events.length / seconds,
      cpu: CpuProbe.cores(before, after),
      note: `bare BullMQ worker + pg, ${connections} connections`,
    };
  } finally {
    await worker?.close();
    await queues.close();
    workerRedis.disconnect();
    producerRedis.disconnect();
    await pool.end();
  }
}

/** Cores busy with anything but the bench's own parties: other processes on the machine. */
const otherWork = (cpu: CoresUsed) =>
  cpu.machine === undefined
    ? undefined
    : Math.max(0, cpu.machine - (cpu.consumer ?? 0) - (cpu.postgres ?? 0) - (cpu.redis ?? 0) - cpu.bench);
function throughputTable(runs: readonly ThroughputRun[]): [string[], string[][]] {
  return [
    [
      'run',
      'events',
      'seconds',
      'events/s',
      'mean group',
      'cpu all',
      'consumer',
      'pg',
      'redis',
      'bench',
      'other',
      'ckpt',
      'settings',
    ],
    runs.map((run) => [
      run.label,
      run.events.toLocaleString('en-US'),
      run.seconds.toFixed(2),
      rate(run.eventsPerSecond),
      run.meanGroup === undefined ? '–' : run.meanGroup.toFixed(1),
      cores(run.cpu.machine),
      cores(run.cpu.consumer),
      cores(run.cpu.postgres),
      cores(run.cpu.redis),
      cores(run.cpu.bench),
      cores(otherWork(run.cpu)),
      String(run.cpu.checkpoints),
      run.note,
    ]),
  ];
}

const rate = (value: number) => Math.round(value).toLocaleString('en-US');
const cores = (value: number | undefined) => (value === undefined ? 'n/a' : value.toFixed(2));

async function main(cleanup: CleanupStack): Promise<void> {
  const started = performance.now();
  const tenants = Array.from({ length: TENANT_COUNT }, (_, i) => `bench-tenant-${i + 1}`);
  const workerTuning = Object.fromEntries(
    WORKER_TUNING.filter((name) => process.env[name] !== undefined).map((name) => [name, process.env[name]!]),
  );
  console.log(
    `supervisor bench: ${EVENTS.toLocaleString('en-US')} events, ${TENANT_COUNT} tenants, worker as a child process (${describeWorkerEnv(workerTuning)}), floor concurrency ${FLOOR_CONCURRENCY.join('/')}`,
  );

  const database = await createTestDatabase();
  cleanup.push('drop database', () => database.drop());
  const db = database.db;
  await sql`create table floor_inbox (
              inbox_id bigserial primary key, tenant_id text not null, event_id text not null, task_id text not null,
              event_type text not null, payload jsonb not null, event_ts timestamptz not null,
              status text not null default 'pending', received_at timestamptz not null default now(), processed_at timestamptz,
              unique (tenant_id, event_id))`.execute(db);
  const prefix = `bench-sup-${randomUUID()}`;
  cleanup.push('delete supervisor queue keys', () => deleteQueuePrefix(prefix));
  const redis = createRedis(testServers.redisUrl, 'general');
  cleanup.push('close Redis', async () => redis.disconnect());
  const queues = new WardenQueues({ connection: redis, prefix });
  cleanup.push('close queues', () => queues.close());
  const probe = new CpuProbe(db, await localRedisPid(testServers.redisUrl));
  const workerEnv = {
    DATABASE_URL: database.url,
    REDIS_URL: testServers.redisUrl,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'warn',
    ...workerTuning,
  };

  const worker = await startWorkerProcess(workerEnv);
  cleanup.push('stop worker', () => worker.stop());
  const context: WardenContext = {
    db,
    queues,
    redis,
    probe,
    prefix,
    worker,
    settings: describeWorkerEnv(workerTuning),
    expectedDecisions: 0,
  };

  // 0. Warm-up, not counted: JIT, connection pools, the tasks and chain heads of every tenant.
  const warmup = makeEvents('warm', WARMUP_EVENTS, tenants, 4);
  for (const batch of chunk(warmup, 500)) await ingestAsSingleEvents(db, queues, batch);
  context.expectedDecisions += warmup.length;
  await waitForDecisions(redis, prefix, context.expectedDecisions, 'warm-up');

  // The floor's concurrency first: each one over a probe of the jobs (the worker idles meanwhile).
  const floorEvents = makeEvents('floor', EVENTS, tenants, 1);
  const probes: ThroughputRun[] = [];
  for (const concurrency of FLOOR_CONCURRENCY) {
    const run = await measureFloor(
      database.url,
      probe,
      floorEvents.slice(0, Math.min(FLOOR_PROBE_EVENTS, EVENTS)),
      concurrency,
      cleanup,
    );
    probes.push({ ...run, label: `${run.label} (probe)` });
    console.log(`floor probe c=${concurrency}: ${rate(run.eventsPerSecond)} events/s`);
  }
  const bestConcurrency =
    FLOOR_CONCURRENCY[
      probes.indexOf(probes.reduce((best, run) => (run.eventsPerSecond > best.eventsPerSecond ? run : best)))
    ]!;

  // 1. Warden at full speed over pre-enqueued events, then right after it (same machine weather) the floor at
  // its best concurrency over as many jobs.
  const runs: ThroughputRun[] = [];
  const warden = await measureWarden(
    `warden, ${TENANT_COUNT} tenants`,
    context,
    makeEvents('main', EVENTS, tenants, 1),
  );
  runs.push(warden);
  console.log(`warden: ${rate(warden.eventsPerSecond)} events/s over ${warden.seconds.toFixed(1)} s`);
  const floor = await measureFloor(database.url, probe, floorEvents, bestConcurrency, cleanup);
  runs.push(floor);
  console.log(`${floor.label}: ${rate(floor.eventsPerSecond)} events/s over ${floor.seconds.toFixed(1)} s`);

  // 2. Decision lag at half of that rate, same worker.
  const halfRate = Math.max(1, Math.round(warden.eventsPerSecond / 2));
  const lagEvents = makeEvents('lag', halfRate * LAG_SECONDS, tenants, 2);
  const lagSampler = new ConnectionStateSampler(db);
  lagSampler.start();
  const lagBefore = await probe.sample(worker.pid);
  const lagGroupsBefore = await worker.groups();
  const produced = await producePaced(db, queues, lagEvents, halfRate);
  context.expectedDecisions += lagEvents.length;
  await waitForDecisions(redis, prefix, context.expectedDecisions, 'lag phase');
  const lagCpu = CpuProbe.cores(lagBefore, await probe.sample(worker.pid));
  const lagGroupsAfter = await worker.groups();
  const lagConnections = await lagSampler.stop();
  // The lag and its parts: the producer's inbox insert, the wait until a group claims the event (enqueue,
  // queue, delivery, group forming, the group's own inbox insert), and the group transaction up to its audit rows.
  const lagRows = await sql<{ total: number; ingest: number; queued: number; decided: number }>`
    select extract(epoch from a.processed_at - a.source_event_ts) * 1000 as total,
           extract(epoch from i.received_at - i.event_ts) * 1000 as ingest,
           extract(epoch from i.claimed_at - i.received_at) * 1000 as queued,
           extract(epoch from a.processed_at - i.claimed_at) * 1000 as decided
      from task_audits a join supervisor_inbox i on i.tenant_id = a.tenant_id and i.event_id = a.event_id
     where a.event_id like 'lag-%' and a.decision_id is not null`.execute(db);
  if (lagRows.rows.length !== lagEvents.length)
    throw new Error(`lag phase: ${lagRows.rows.length} audited decisions for ${lagEvents.length} events`);
  const distribution = (values: number[]) => {
    const sorted = values.sort((x, y) => x - y);
    return {
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      p99: percentile(sorted, 99),
      max: sorted[sorted.length - 1]!,
    };
  };
  const lag = distribution(lagRows.rows.map((r) => Number(r.total)));
  const lagParts: Array<[string, ReturnType<typeof distribution>]> = [
    ['lag (processed_at - source_event_ts)', lag],
    ['  producer: inbox insert', distribution(lagRows.rows.map((r) => Number(r.ingest)))],
    ['  until claimed', distribution(lagRows.rows.map((r) => Number(r.queued)))],
    ['  claimed to decided', distribution(lagRows.rows.map((r) => Number(r.decided)))],
  ];
  const lagMeanGroup =
    (lagGroupsAfter.events - lagGroupsBefore.events) / (lagGroupsAfter.count - lagGroupsBefore.count);
  console.log(
    `lag at ${rate(halfRate)} events/s for ${produced.seconds.toFixed(1)} s: p50 ${lag.p50.toFixed(1)} ms, p99 ${lag.p99.toFixed(1)} ms (producer at most ${produced.maxBehind} events behind its pace)`,
  );

  // 3. One tenant: every group serialises on the same audit chain head.
  if (SINGLE_TENANT_EVENTS > 0) {
    const solo = await measureWarden(
      'warden, 1 tenant',
      context,
      makeEvents('solo', SINGLE_TENANT_EVENTS, ['bench-solo'], 3),
    );
    runs.push(solo);
    console.log(`warden, 1 tenant: ${rate(solo.eventsPerSecond)} events/s over ${solo.seconds.toFixed(1)} s`);
  }
  // 4. The API's batch path: one job per request of 100 events, so far fewer BullMQ jobs than events.
  if (BATCH_EVENTS > 0) {
    const batched = await measureWarden(
      'warden, batch jobs of 100',
      context,
      makeEvents('batch', BATCH_EVENTS, tenants, 5),
      'batch100',
    );
    runs.push(batched);
    console.log(
      `warden, batch jobs of 100: ${rate(batched.eventsPerSecond)} events/s over ${batched.seconds.toFixed(1)} s`,
    );
  }
  await worker.stop();
  runs.push(...probes);

  console.log('');
  console.log(formatTable(...throughputTable(runs)));
  console.log('');
  console.log(
    formatTable(
      ['decision lag at half load', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'],
      lagParts.map(([part, d]) => [
        part,
        d.p50.toFixed(1),
        d.p95.toFixed(1),
        d.p99.toFixed(1),
        d.max.toFixed(1),
      ]),
    ),
  );
  console.log(
    `  ${rate(halfRate)} events/s for ${produced.seconds.toFixed(1)} s, ${lagRows.rows.length.toLocaleString('en-US')} events, mean group ${lagMeanGroup.toFixed(1)}; cores: all ${cores(lagCpu.machine)}, ` +
      `worker ${cores(lagCpu.consumer)}, pg ${cores(lagCpu.postgres)}, redis ${cores(lagCpu.redis)}, bench (producer) ${cores(lagCpu.bench)}, other ${cores(otherWork(lagCpu))}; ` +
      `${lagCpu.checkpoints} Postgres checkpoints`,
  );
  console.log(
    `  worker's Postgres connections, mean number in each state: ${lagConnections.map(([state, n]) => `${state} ${n.toFixed(2)}`).join(', ')}`,
  );
  console.log('');
  for (const run of runs.filter((r) => r.connections)) {
    console.log(
      `${run.label} — worker's Postgres connections, mean number in each state: ${run.connections!.map(([state, n]) => `${state} ${n.toFixed(2)}`).join(', ')}`,
    );
  }
  console.log('');
  console.log(
    'events/s: first claim (floor: first job) to last decision (floor: last commit); start-up not counted.',
  );
  console.log(
    'cpu: cores busy during the run — whole machine (other work included), the consumer (worker process; floor: this',
  );
  console.log(
    'process), Postgres backends of the bench database, Redis (shared: other users count), this process when it is',
  );
  console.log(
    'not the consumer (producer, polling), and other work on the machine. Lag: task_audits.processed_at -',
  );
  console.log(
    'source_event_ts, where source_event_ts is when the paced producer sent the event (API path: insert, then enqueue).',
  );
  console.log(
    "ckpt: Postgres checkpoints during the run, server-wide (another user's DROP DATABASE forces one).",
  );
  const busiest = Math.max(...runs.map((run) => otherWork(run.cpu) ?? 0), otherWork(lagCpu) ?? 0);
  const checkpoints = runs.reduce((sum, run) => sum + run.cpu.checkpoints, lagCpu.checkpoints);
  if (busiest > 0.3 || checkpoints > 0)
    console.log(
      `WARNING: the machine was not quiet (up to ${busiest.toFixed(2)} cores of other work, ${checkpoints} checkpoints during ` +
        'measurements); the figures are low and noisy. Rerun on a quiet machine.',
    );

  const ratio = warden.eventsPerSecond / floor.eventsPerSecond;
  const ratioMet = ratio >= GOAL_RATIO;
  const lagMet = lag.p99 <= GOAL_LAG_P99_MS;
  console.log(`total time ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(
    `goal ratio >= ${GOAL_RATIO.toFixed(1)} (warden ${rate(warden.eventsPerSecond)}/s vs ${floor.label} ${rate(floor.eventsPerSecond)}/s): ${ratioMet ? 'met' : 'NOT met'} (${ratio.toFixed(2)} x)`,
  );
  console.log(
    `goal lag p99 <= ${GOAL_LAG_P99_MS} ms at half load: ${lagMet ? 'met' : 'NOT met'} (${lag.p99.toFixed(1)} ms)`,
  );
  console.log(
    `RESULT supervisor eps=${Math.round(warden.eventsPerSecond)} floor_eps=${Math.round(floor.eventsPerSecond)} ratio=${ratio.toFixed(2)} lag_p99_ms=${Math.round(lag.p99)}`,
  );
}

/** `BENCH_SWEEP`: Warden's throughput under each setting, interleaved over rounds; the median per setting. */
async function sweep(cleanup: CleanupStack, spec: string): Promise<void> {
  const settings = spec.split(';').map((part) =>
    Object.fromEntries(
      part
        .split(',')
        .map((pair) => pair.trim())
        .filter(Boolean)
        .map((pair) => {
          const [name, value] = pair.split('=').map((side) => side.trim());
          if (!(WORKER_TUNING as readonly string[]).includes(name!) || !value)
            throw new Error(`BENCH_SWEEP: "${pair}" is not one of ${WORKER_TUNING.join(', ')}=<n>`);
          return [name!, value];
        }),
    ),
  );
  const rounds = Math.max(1, intFromEnv('BENCH_SWEEP_ROUNDS', 1));
  const tenants = Array.from({ length: TENANT_COUNT }, (_, i) => `bench-tenant-${i + 1}`);
  console.log(
    `supervisor sweep: ${settings.length} settings x ${rounds} rounds, ${EVENTS.toLocaleString('en-US')} events each, ${TENANT_COUNT} tenants`,
  );
  const database = await createTestDatabase();
  cleanup.push('drop database', () => database.drop());
  const redis = createRedis(testServers.redisUrl, 'general');
  cleanup.push('close Redis', async () => redis.disconnect());
  const probe = new CpuProbe(database.db, await localRedisPid(testServers.redisUrl));
  const results: ThroughputRun[][] = settings.map(() => []);
  for (let round = 1; round <= rounds; round++) {
    for (const [index, tuning] of settings.entries()) {
      const prefix = `bench-sweep-${randomUUID()}`;
      cleanup.push(`delete sweep queue keys ${prefix}`, () => deleteQueuePrefix(prefix));
      const queues = new WardenQueues({ connection: redis, prefix });
      const worker = await startWorkerProcess({
        DATABASE_URL: database.url,
        REDIS_URL: testServers.redisUrl,
        QUEUE_PREFIX: prefix,
        LOG_LEVEL: 'warn',
        ...tuning,
      });
      try {
        const context: WardenContext = {
          db: database.db,
          queues,
          redis,
          probe,
          prefix,
          worker,
          settings: describeWorkerEnv(tuning),
          expectedDecisions: 0,
        };
        const warmup = makeEvents(`sw${round}-${index}-warm`, WARMUP_EVENTS, tenants, 4);
        for (const batch of chunk(warmup, 500)) await ingestAsSingleEvents(database.db, queues, batch);
        context.expectedDecisions += warmup.length;
        await waitForDecisions(redis, prefix, context.expectedDecisions, 'warm-up');
        const run = await measureWarden(
          `round ${round}`,
          context,
          makeEvents(`sw${round}-${index}`, EVENTS, tenants, 1),
        );
        results[index]!.push(run);
        console.log(
          `round ${round}, ${run.note}: ${rate(run.eventsPerSecond)} events/s, mean group ${run.meanGroup?.toFixed(1)}, other work ${cores(otherWork(run.cpu))} cores`,
        );
        console.log(
          `  connections: ${run.connections!.map(([state, n]) => `${state} ${n.toFixed(2)}`).join(', ')}`,
        );
      } finally {
        await worker.stop();
        await queues.close();
      }
    }
  }
  console.log('');
  console.log(
    formatTable(
      ...throughputTable(
        results.map((runs) => ({
          ...medianRun(runs, (run) => run.eventsPerSecond),
          label: `median of ${runs.length}`,
        })),
      ),
    ),
  );
  console.log('');
  console.log(
    `per round (events/s): ${results.map((runs) => `${runs[0]!.note}: ${runs.map((run) => rate(run.eventsPerSecond)).join(' / ')}`).join('; ')}`,
  );
}

const cleanup = new CleanupStack();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: cleaning up`);
    void cleanup.run().finally(() => process.exit(130));
  });
}
let exitCode = 0;
try {
  const sweepSpec = process.env.BENCH_SWEEP;
  await (sweepSpec ? sweep(cleanup, sweepSpec) : main(cleanup));
} catch (error) {
  console.error('supervisor bench failed:', error);
  exitCode = 1;
} finally {
  await cleanup.run();
}
// Keep-alive sockets and timers of libraries must not hold the process open once the results are out.
process.exit(exitCode);
