/**
 * `pnpm bench:recovery` — how fast the supervisor catches up on events accepted while Redis was away
 * (docs/supervisor.md, "The poller"; issue 12 goal: 20,000 such events decided within 30 s of Redis returning).
 *
 * The supervisor-worker runs as a child process (`services/supervisor-worker/src/main.ts`, as deployed, default
 * poller settings) with its Redis behind a TCP proxy this bench cuts. While Redis is away, BENCH_RECOVERY_EVENTS
 * events are accepted the way `POST /v1/events` accepts them when its enqueue fails: the inbox rows are committed
 * (`insertPendingEvents`) and no job exists. After BENCH_OUTAGE_SECONDS the proxy lets Redis through again; the
 * clock starts then and stops when every event has its decision. Nothing but the poller can bring these events
 * to the supervisor. Then it checks that no event was decided twice (one decision and one audit row each).
 * Last, the reference: as many events again, each with its job already waiting, decided at the supervisor's
 * full speed on the same machine in the same run (`full_speed_eps`; `drain_ratio` = eps / full_speed_eps).
 *
 * A warm-up of 1,000 events through the ordinary path (inbox row + job) runs first. Self-contained: its own
 * database and queue prefix, removed at the end, even on failure or Ctrl-C. The last line is
 * `RESULT recovery events=… drain_s=… eps=… first_decision_s=… reenqueued=… full_speed_eps=… drain_ratio=…`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { insertPendingEvents, type Db } from '@warden/db';
import type { TaskEvent } from '@warden/domain';
import { QUEUE_NAMES, WardenQueues, createRedis, eventJobId } from '@warden/queue';
import { createTestDatabase, deleteQueuePrefix, testServers } from '@warden/testing';
import { freePort } from '../support/supervisor.js';
import { tcpProxy } from '../support/tcp-proxy.js';
import { CleanupStack, chunk, startJanitor } from './support.js';

const intFromEnv = (name: string, fallback: number) => {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1)
    throw new Error(`${name} must be a positive integer, got "${value}"`);
  return parsed;
};

const EVENTS = intFromEnv('BENCH_RECOVERY_EVENTS', 20_000);
const OUTAGE_SECONDS = intFromEnv('BENCH_OUTAGE_SECONDS', 8);
const WARMUP_EVENTS = 1_000;
const TENANTS = 8;
const EVENTS_PER_TASK = 10;
const GOAL_SECONDS = 30;
/** A drain that has not finished within this is a failure, not a hang. */
const DRAIN_DEADLINE_MS = 300_000;
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Tasks of ten events each over the tenants: created, then steps (some risky), failures and heartbeats. */
function makeEvents(label: string, count: number): TaskEvent[] {
  const ts = new Date().toISOString();
  return Array.from({ length: count }, (_, i) => {
    const task = Math.floor(i / EVENTS_PER_TASK);
    const k = i % EVENTS_PER_TASK;
    const base = {
      event_id: `${label}-${i}`,
      tenant_id: `bench-tenant-${(task % TENANTS) + 1}`,
      task_id: `${label}-task-${task}`,
      ts,
      source: 'http' as const,
    };
    if (k === 0)
      return {
        ...base,
        event_type: 'TASK_CREATED',
        payload: { run_mode: 'supervised', command_spec: { name: 'build', command: 'npm', args: ['test'] } },
      };
    if (k % 4 === 3)
      return {
        ...base,
        event_type: 'TASK_FAILED',
        payload: { error_type: 'network_timeout', error_message: 'upstream timed out' },
      };
    if (k % 4 === 2) return { ...base, event_type: 'AGENT_HEARTBEAT', payload: { seq: k } };
    return {
      ...base,
      event_type: 'TASK_STEP_COMPLETED',
      payload: {
        step: { index: k, tool: 'shell' },
        risk_indicators: { error_rate: i % 13 === 0 ? 0.45 : 0.02, resource_usage: 0.4 },
      },
    };
  });
}

async function decidedCount(db: Db, label: string): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select count(*) as n from supervisor_inbox
     where event_id like ${`${label}-%`} and status in ('completed', 'dead')`.execute(db);
  return Number(rows[0]!.n);
}

interface WorkerProcess {
  pid: number;
  /** A counter of the worker's /metrics (summed over its labels). */
  counter(name: string): Promise<number>;
  stop(): Promise<void>;
}

async function startWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', 'services/supervisor-worker/src/main.ts'],
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
  const counter = async (name: string) => {
    const text = await (
      await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) })
    ).text();
    return [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce(
      (sum, match) => sum + Number(match[1]),
      0,
    );
  };
  return { pid: child.pid!, counter, stop };
}

/** Seconds until `count` events of `label` are decided; `firstS`: until the first was. */
async function waitUntilDecided(
  db: Db,
  label: string,
  count: number,
): Promise<{ seconds: number; firstS: number }> {
  const started = performance.now();
  let firstS: number | undefined;
  for (;;) {
    const decided = await decidedCount(db, label);
    if (decided > 0) firstS ??= (performance.now() - started) / 1000;
    if (decided >= count) return { seconds: (performance.now() - started) / 1000, firstS: firstS! };
    if (performance.now() - started > DRAIN_DEADLINE_MS)
      throw new Error(
        `${label}: only ${await decidedCount(db, label)} of ${count} events decided within ${DRAIN_DEADLINE_MS / 1000} s`,
      );
    await sleep(100);
  }
}

async function main(cleanup: CleanupStack): Promise<void> {
  const started = performance.now();
  const janitor = startJanitor();
  cleanup.push('release the janitor', () => janitor.release());
  const database = await createTestDatabase();
  cleanup.push('drop database', () => database.drop());
  const db = database.db;
  const prefix = `bench-rec-${randomUUID()}`;
  janitor.watch({ databaseUrl: database.url, queuePrefix: prefix });
  cleanup.push('delete queue keys', () => deleteQueuePrefix(prefix));
  const redisUrl = new URL(testServers.redisUrl);
  const proxy = await tcpProxy({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
  cleanup.push('close the Redis proxy', () => proxy.close());
  const redis = createRedis(testServers.redisUrl, 'general');
  cleanup.push('close Redis', async () => redis.disconnect());
  const queues = new WardenQueues({ connection: redis, prefix });
  cleanup.push('close queues', () => queues.close());

  const worker = await startWorkerProcess({
    DATABASE_URL: database.url,
    REDIS_URL: proxy.urlFor(testServers.redisUrl),
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'error',
  });
  janitor.watch({ pids: [worker.pid] });
  cleanup.push('stop the supervisor-worker', () => worker.stop());
  console.log(
    `recovery bench: ${EVENTS.toLocaleString('en-US')} events accepted during a ${OUTAGE_SECONDS} s Redis outage, supervisor-worker as a child process (default poller settings); load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );

  // Warm-up through the ordinary path: inbox row, then a job per event.
  const warmup = makeEvents('warmup', WARMUP_EVENTS);
  const fresh = await insertPendingEvents(db, warmup);
  await queues.enqueueBulk(
    QUEUE_NAMES.supervisorEvents,
    'event',
    fresh.map((event) => ({
      payload: event,
      options: { jobId: eventJobId(event.tenant_id, event.event_id) },
    })),
  );
  const { seconds: warmupSeconds } = await waitUntilDecided(db, 'warmup', WARMUP_EVENTS);
  console.log(
    `warm-up: ${WARMUP_EVENTS} events through the queue in ${warmupSeconds.toFixed(1)} s (${Math.round(WARMUP_EVENTS / warmupSeconds)}/s)`,
  );

  // No job in flight when Redis goes: their retries would only add noise to the log.
  const queue = queues.get(QUEUE_NAMES.supervisorEvents);
  for (let waited = 0; waited < 30_000; waited += 100) {
    const open = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    if (Object.values(open).every((n) => n === 0)) break;
    await sleep(100);
  }

  // The outage: the worker loses Redis; the API keeps accepting (inbox rows, no jobs).
  await proxy.cut();
  const outageStarted = performance.now();
  const events = makeEvents('outage', EVENTS);
  for (const part of chunk(events, 500)) await insertPendingEvents(db, part);
  const left = OUTAGE_SECONDS * 1000 - (performance.now() - outageStarted);
  if (left > 0) await sleep(left);
  console.log(
    `outage: ${EVENTS} events accepted in ${((performance.now() - outageStarted) / 1000).toFixed(1)} s of Redis away; Redis returns`,
  );
  const reenqueuedBefore = await worker.counter('supervisor_poller_reenqueued_total');
  await proxy.restore();
  const drained = await waitUntilDecided(db, 'outage', EVENTS);
  const drainSeconds = drained.seconds;
  const eps = EVENTS / drainSeconds;

  const { rows } = await sql<{ decisions: string; events: string; audits: string }>`
    select (select count(*) from decisions where event_id like 'outage-%') as decisions,
           (select count(distinct (tenant_id, event_id)) from decisions where event_id like 'outage-%') as events,
           (select count(*) from task_audits where event_id like 'outage-%') as audits`.execute(db);
  const counts = rows[0]!;
  console.log(
    `drained: ${EVENTS} events decided ${drainSeconds.toFixed(1)} s after Redis returned (${Math.round(eps)}/s); ${counts.decisions} decisions for ${counts.events} events, ${counts.audits} audit rows`,
  );
  if (Number(counts.decisions) !== Number(counts.events))
    throw new Error(`an event was decided twice: ${counts.decisions} decisions for ${counts.events} events`);
  const reenqueued = (await worker.counter('supervisor_poller_reenqueued_total')) - reenqueuedBefore;
  console.log(
    `first decision ${drained.firstS.toFixed(1)} s after Redis returned; the poller enqueued ${reenqueued} jobs for the ${EVENTS} events`,
  );

  // The reference: the supervisor's full speed on the same machine, in the same run — the same number of
  // events, each with its job already waiting (queue paused while they are added, then resumed).
  await queue.pause();
  const reference = makeEvents('reference', EVENTS);
  for (const part of chunk(reference, 500)) {
    const added = await insertPendingEvents(db, part);
    await queues.enqueueBulk(
      QUEUE_NAMES.supervisorEvents,
      'event',
      added.map((event) => ({
        payload: event,
        options: { jobId: eventJobId(event.tenant_id, event.event_id) },
      })),
    );
  }
  await queue.resume();
  const { seconds: referenceSeconds } = await waitUntilDecided(db, 'reference', EVENTS);
  const fullEps = EVENTS / referenceSeconds;
  console.log(
    `reference: ${EVENTS} events with their jobs waiting decided in ${referenceSeconds.toFixed(1)} s (${Math.round(fullEps)}/s); the drain ran at ${((eps / fullEps) * 100).toFixed(0)}% of that`,
  );
  console.log(
    `goal ${EVENTS} events decided within ${GOAL_SECONDS} s of Redis returning: ${drainSeconds <= GOAL_SECONDS ? 'met' : 'NOT met'}`,
  );
  console.log(
    `total time ${((performance.now() - started) / 1000).toFixed(1)} s; load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    `RESULT recovery events=${EVENTS} drain_s=${drainSeconds.toFixed(1)} eps=${Math.round(eps)} first_decision_s=${drained.firstS.toFixed(1)} reenqueued=${reenqueued} full_speed_eps=${Math.round(fullEps)} drain_ratio=${(eps / fullEps).toFixed(2)}`,
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
  await main(cleanup);
} catch (error) {
  console.error('recovery bench failed:', error);
  exitCode = 1;
} finally {
  if (!(await cleanup.run())) exitCode = exitCode || 1;
}
process.exit(exitCode);
