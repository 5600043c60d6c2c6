/**
 * The supervisor's crash acceptance test (docs/supervisor.md): while 20,000 events arrive — through the API path (inbox
 * row, then one job per request: `event` for a single event, `events` for a batch), straight onto the queue
 * (no inbox row) and as duplicates — the worker process is killed with SIGKILL at random moments and
 * restarted. Afterwards every event must have exactly one decision and one audit row, every inbox row must be
 * `completed`, no gate may be missing or doubled, and every tenant's audit hash chain must verify.
 *
 * The run is planned by a seeded PRNG (events, paths, duplicates, kill times). A failure prints the seed;
 * `CHAOS_SEED=<seed>` replays the same plan (process scheduling still varies, so a race may need a few runs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertPendingEvents, type Db } from '@warden/db';
import { findChainBreak, toAuditChainContent, type TaskEvent } from '@warden/domain';
import { QUEUE_NAMES, WardenQueues, createRedis, eventBatchJobId, eventJobId } from '@warden/queue';
import {
  createTestDatabase,
  deleteQueuePrefix,
  testQueuePrefix,
  testServers,
  type TestDatabase,
} from '@warden/testing';

const SEED = process.env.CHAOS_SEED === undefined ? randomInt(2 ** 31) : Number(process.env.CHAOS_SEED);
const EVENT_COUNT = 20_000;
const TENANTS = ['chaos-acme', 'chaos-globex', 'chaos-initech', 'chaos-umbrella'];
const EVENTS_PER_TASK = 10;
/** Events arrive over this window; kills start inside it, and the backlog it builds keeps every kill mid-work. */
const FEED_MS = 24_000;
const KILLS = 6;
/** Each process is killed this long (uniformly random, in ms) after its first claim. */
const KILL_AFTER_FIRST_CLAIM_MS = [0, 2500] as const;
/** Share of events that arrive through the API path (inbox row, then job); the rest go straight to the queue. */
const API_PATH_SHARE = 0.6;
/** Share of API-path events sent in batch requests (up to API_BATCH_SIZE events of a tenant, one `events` job). */
const API_BATCHED_SHARE = 0.5;
const API_BATCH_SIZE = 50;
/** Share of events delivered a second time. */
const DUPLICATE_SHARE = 0.1;
/** After the feed, abandoned work must be back and decided within this. BullMQ gives a job held by a dead worker back only after its lock expires (30 s) and a stalled check (every 30 s) sees it. */
const DRAIN_DEADLINE_MS = 110_000;
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WORKER_ENV = {
  LOG_LEVEL: 'warn',
  CLAIM_TTL_MS: '2000',
  POLL_INTERVAL_MS: '500',
  POLL_GRACE_MS: '1000',
  DB_POOL_SIZE: '6',
};

/** mulberry32: small, fast and good enough to make a run reproducible from its seed. */
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

/** `batched`: sent over the API in a request with other events of its tenant (one `events` job), not alone. */
type PlannedEvent = Omit<TaskEvent, 'ts' | 'source'> & {
  path: 'api' | 'queue';
  batched: boolean;
  arriveAtMs: number;
};

/** One delivery of an event: its first arrival, or a duplicate (same or new job id, or an API re-post). */
interface Delivery {
  atMs: number;
  event: PlannedEvent;
  kind: 'first' | 'same-job-id' | 'new-job-id' | 'api-repost';
}

/**
 * A realistic mix per task: TASK_CREATED first (mostly clean, some redlines that block, some destructive rules
 * that pause, some exclusive resources), then steps (some risky enough to pause, some outside the declared
 * capabilities), failures (retryable, non-retryable, classified by message), state changes and types without
 * a policy of their own.
 */
function planEvents(random: () => number): PlannedEvent[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const events: PlannedEvent[] = [];
  const tasks = EVENT_COUNT / EVENTS_PER_TASK;
  for (let t = 0; t < tasks; t++) {
    const tenant_id = TENANTS[t % TENANTS.length]!;
    const task_id = `task-${t}`;
    let arriveAtMs = random() * FEED_MS * 0.8;
    const kind = random();
    const created: Record<string, unknown> = {
      run_mode: pick(['assisted', 'supervised', 'autonomous']),
      max_retries: pick([2, 3, 5]),
      agent_spec: {
        name: `agent-${t % 37}`,
        capabilities: ['file_read', 'shell', ...(random() < 0.5 ? ['network'] : [])],
      },
      command_spec: { name: 'build', command: 'npm', args: ['run', 'build'] },
    };
    if (kind < 0.1)
      created.command_spec = {
        name: 'install',
        command: 'curl',
        args: ['-sSL', 'https://get.example.com/install.sh', '|', 'sh'],
      };
    else if (kind < 0.15) created.command_spec = { name: 'reset', command: 'sudo', args: ['rm', '-rf', '/'] };
    else if (kind < 0.25)
      created.rule_spec = { name: 'cleanup', condition: 'age > 30d', action: 'delete stale artifacts' };
    else if (kind < 0.3) created.exclusive_resources = [`db-migration-${t % 8}`];
    for (let k = 0; k < EVENTS_PER_TASK; k++) {
      const base = {
        event_id: `evt-${t}-${k}`,
        tenant_id,
        task_id,
        path: random() < API_PATH_SHARE ? ('api' as const) : ('queue' as const),
        batched: random() < API_BATCHED_SHARE,
        arriveAtMs,
      };
      arriveAtMs += 20 + random() * 400;
      if (k === 0) {
        events.push({ ...base, event_type: 'TASK_CREATED', payload: created });
        continue;
      }
      const roll = random();
      if (roll < 0.55) {
        const risky = random();
        events.push({
          ...base,
          event_type: 'TASK_STEP_COMPLETED',
          payload: {
            step: {
              index: k,
              mode: risky < 0.05 ? 'autonomous' : 'assisted',
              tool: risky > 0.97 ? 'deploy' : 'shell',
            },
            risk_indicators: {
              error_rate: risky < 0.15 ? 0.45 : 0.02,
              resource_usage: risky < 0.08 ? 0.93 : 0.4,
              security_score: risky > 0.9 ? 35 : 88,
            },
            result: { warnings: random() < 0.1 ? ['slow dependency resolution'] : [] },
          },
        });
      } else if (roll < 0.72) {
        const failure = pick([
          { error_type: 'network_timeout', error_message: 'upstream timed out after 30s' },
          { error_type: 'rate_limited', error_message: 'HTTP 429' },
          { error_type: 'permission_denied', error_message: 'cannot write /srv/app' },
          { error_message: 'connection reset by peer' },
          { error_message: 'invalid configuration: missing region' },
        ]);
        events.push({
          ...base,
          event_type: 'TASK_FAILED',
          payload: { ...failure, ...(random() < 0.3 ? { retry_count: Math.floor(random() * 4) } : {}) },
        });
      } else if (roll < 0.85) {
        events.push({
          ...base,
          event_type: 'TASK_STATE_CHANGED',
          payload: { from: 'running', to: pick(['running', 'waiting', 'verifying']) },
        });
      } else {
        events.push({
          ...base,
          event_type: pick(['AGENT_HEARTBEAT', 'TOOL_CALLED', 'ARTIFACT_UPLOADED']),
          payload: { seq: k, note: 'no policy of its own' },
        });
      }
    }
  }
  return events;
}

function planDeliveries(
  events: readonly PlannedEvent[],
  random: () => number,
): { deliveries: Delivery[]; duplicates: Record<Delivery['kind'], number> } {
  const deliveries: Delivery[] = [];
  const duplicates: Record<Delivery['kind'], number> = {
    first: 0,
    'same-job-id': 0,
    'new-job-id': 0,
    'api-repost': 0,
  };
  for (const event of events) {
    deliveries.push({ atMs: event.arriveAtMs, event, kind: 'first' });
    if (random() >= DUPLICATE_SHARE) continue;
    const roll = random();
    const kind: Delivery['kind'] =
      event.path === 'api' && roll < 0.3 ? 'api-repost' : roll < 0.6 ? 'same-job-id' : 'new-job-id';
    duplicates[kind] += 1;
    // Some duplicates race the first delivery, others come after it was decided.
    deliveries.push({ atMs: Math.min(FEED_MS, event.arriveAtMs + random() * 4000), event, kind });
  }
  duplicates.first = events.length;
  return { deliveries: deliveries.sort((a, b) => a.atMs - b.atMs), duplicates };
}

/**
 * How long each process works before it is killed, counted from its first claim: a cold start takes seconds on
 * a loaded machine, so wall-clock kill times would often hit a process that had not taken any work yet.
 */
function planKills(random: () => number): number[] {
  const [min, max] = KILL_AFTER_FIRST_CLAIM_MS;
  return Array.from({ length: KILLS }, () => Math.round(min + random() * (max - min)));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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

/** One supervisor-worker process, started as deployed (`main.ts`, configured through env). */
class WorkerProcess {
  readonly startedAt = new Date();
  readyAt: Date | undefined;
  readonly exited: Promise<number | string | null>;
  private readonly output: string[] = [];
  private exitStatus: number | string | null | undefined;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
    void this.exited.then((status) => (this.exitStatus = status));
    const keep = (chunk: Buffer) => {
      this.output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (this.output.length > 200) this.output.splice(0, this.output.length - 200);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  static async start(env: Record<string, string>): Promise<WorkerProcess> {
    const port = await freeLoopbackPort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/supervisor-worker/src/main.ts'], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, OPS_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    liveProcesses.add(child);
    child.once('exit', () => liveProcesses.delete(child));
    return new WorkerProcess(child, port);
  }

  get running(): boolean {
    return this.exitStatus === undefined;
  }

  /** The last lines the process wrote (warn and above, JSON). */
  get recentOutput(): string[] {
    return [...this.output];
  }

  /** Resolves once `/readyz` answers 200; rejects when the process exits first or the deadline passes. */
  async ready(deadlineMs = 60_000): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      if (!this.running)
        throw new Error(
          `the worker exited (${String(this.exitStatus)}) before it was ready:\n${this.recentOutput.join('\n')}`,
        );
      const ok = await fetch(`http://127.0.0.1:${this.port}/readyz`, {
        signal: AbortSignal.timeout(1000),
      }).then(
        (response) => response.ok,
        () => false,
      );
      if (ok) {
        this.readyAt = new Date();
        return;
      }
      if (Date.now() > deadline) throw new Error(`the worker was not ready within ${deadlineMs} ms`);
      await sleep(50);
    }
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (a graceful stop), then SIGKILL if it does not exit in time. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

interface KillRecord {
  atMs: number;
  /** Since the process made its first claim. */
  workedMs: number;
  fed: number;
  completed: number;
  /** Inbox rows the killed process had claimed and not completed: decided work it abandoned. */
  abandonedClaims: number;
  /** Jobs BullMQ lists as active: held by this and earlier dead processes until a stalled check returns them. */
  activeJobs: number;
  /**
   * Jobs the killed process held (taken off the queue, not finished): the growth of `activeJobs` since the
   * previous kill. An undercount if BullMQ returned stalled jobs in between.
   */
  heldJobs: number;
  /** Events fed but not yet decided. */
  backlog: number;
}

async function inboxCounts(db: Db, since?: Date) {
  const { rows } = await sql<{ status: string; n: string; mine: string }>`
    select status, count(*) as n,
           count(*) filter (where status = 'processing' and claimed_at >= ${since ?? new Date(0)}) as mine
      from supervisor_inbox group by status`.execute(db);
  const counts = {
    pending: 0,
    processing: 0,
    completed: 0,
    failed: 0,
    dead: 0,
    total: 0,
    processingSince: 0,
  };
  for (const row of rows) {
    counts[row.status as 'pending'] = Number(row.n);
    counts.total += Number(row.n);
    counts.processingSince += Number(row.mine);
  }
  return counts;
}

/** When `worker` first claimed an inbox row (ms since the epoch); its claims carry `claimed_at` after its start. */
async function waitForFirstClaim(db: Db, worker: WorkerProcess, deadlineMs = 60_000): Promise<number> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const { rows } = await sql<{
      first: Date | null;
    }>`select min(claimed_at) as first from supervisor_inbox where claimed_at >= ${worker.startedAt}`.execute(
      db,
    );
    if (rows[0]?.first) return rows[0].first.getTime();
    if (!worker.running)
      throw new Error(`the worker exited before its first claim:\n${worker.recentOutput.join('\n')}`);
    if (Date.now() > deadline)
      throw new Error(`the worker claimed nothing within ${deadlineMs} ms of its start`);
    await sleep(50);
  }
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let offset = 0; offset < items.length; offset += size) chunks.push(items.slice(offset, offset + size));
  return chunks;
}

/**
 * What `POST /v1/events` does with one request: inbox rows first (durable), then one job for the fresh events —
 * a single event under its derived job id, several as one `events` job under the batch's derived id.
 */
async function postLikeTheApi(db: Db, queues: WardenQueues, request: TaskEvent[]): Promise<void> {
  const fresh = await insertPendingEvents(db, request);
  const [first] = fresh;
  if (fresh.length === 1 && first) {
    await queues.enqueue(QUEUE_NAMES.supervisorEvents, 'event', first, {
      jobId: eventJobId(first.tenant_id, first.event_id),
    });
  } else if (fresh.length > 1) {
    const jobId = eventBatchJobId(
      fresh[0]!.tenant_id,
      fresh.map((event) => event.event_id),
    );
    await queues.enqueue(QUEUE_NAMES.supervisorEvents, 'events', { events: fresh }, { jobId });
  }
}

/** A worker process must not outlive this one, even when the test process is torn down abruptly. */
const liveProcesses = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of liveProcesses) child.kill('SIGKILL');
});

describe('supervisor-worker killed with SIGKILL while deciding 20,000 events', () => {
  let database: TestDatabase;
  let prefix: string;
  let queues: WardenQueues | undefined;
  let producer: ReturnType<typeof createRedis> | undefined;
  let worker: WorkerProcess | undefined;
  /** Every process started, so teardown can kill them all — even one a timed-out beforeAll starts late. */
  const started: WorkerProcess[] = [];
  let tearingDown = false;
  let events: PlannedEvent[];
  const kills: KillRecord[] = [];
  const workerLog: string[] = [];

  beforeAll(async () => {
    console.log(`supervisor chaos: seed ${SEED} (replay with CHAOS_SEED=${SEED})`);
    const random = createRandom(SEED);
    events = planEvents(random);
    const { deliveries, duplicates } = planDeliveries(events, random);
    const killTimes = planKills(random);
    console.log(
      `plan: ${events.length} events over ${FEED_MS / 1000} s, ${events.filter((e) => e.path === 'api').length} via the API path ` +
        `(${events.filter((e) => e.path === 'api' && e.batched).length} of them in batch requests), ` +
        `${events.filter((e) => e.path === 'queue').length} straight onto the queue; duplicates: ${duplicates['same-job-id']} same job id, ` +
        `${duplicates['new-job-id']} new job id, ${duplicates['api-repost']} API re-posts; kills ${killTimes.map((t) => (t / 1000).toFixed(1)).join(', ')} s after each process's first claim`,
    );

    database = await createTestDatabase();
    prefix = testQueuePrefix();
    producer = createRedis(testServers.redisUrl, 'general');
    queues = new WardenQueues({ connection: producer, prefix });
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: testServers.redisUrl,
      QUEUE_PREFIX: prefix,
      ...WORKER_ENV,
    };
    const startupsMs: number[] = [];
    const startWorker = async () => {
      if (tearingDown) throw new Error('the test is tearing down; no more worker processes');
      worker = await WorkerProcess.start(env);
      started.push(worker);
      await worker.ready();
      startupsMs.push(worker.readyAt!.getTime() - worker.startedAt.getTime());
    };
    await startWorker();

    const feedStartedAt = Date.now();
    const asTaskEvent = (event: PlannedEvent, source: TaskEvent['source']): TaskEvent => ({
      event_id: event.event_id,
      tenant_id: event.tenant_id,
      task_id: event.task_id,
      event_type: event.event_type,
      ts: new Date(feedStartedAt + event.arriveAtMs).toISOString(),
      source,
      payload: event.payload,
    });
    let fed = 0;

    // The producers: deliveries go out when due, in small batches, whatever state the worker is in.
    const feed = (async () => {
      let next = 0;
      while (next < deliveries.length) {
        if (Date.now() - feedStartedAt > FEED_MS + 30_000)
          throw new Error('the feed fell more than 30 s behind its plan');
        const due: Delivery[] = [];
        const now = Date.now() - feedStartedAt;
        while (next < deliveries.length && deliveries[next]!.atMs <= now && due.length < 500)
          due.push(deliveries[next++]!);
        if (due.length === 0) {
          await sleep(25);
          continue;
        }
        // The API path, as POST /v1/events: single events and batches of one tenant's events.
        const viaApi = due.filter(
          (d) => d.kind === 'api-repost' || (d.kind === 'first' && d.event.path === 'api'),
        );
        const requests = [
          ...viaApi.filter((d) => !d.event.batched).map((d) => [asTaskEvent(d.event, 'http')]),
          ...TENANTS.flatMap((tenant) =>
            chunk(
              viaApi
                .filter((d) => d.event.batched && d.event.tenant_id === tenant)
                .map((d) => asTaskEvent(d.event, 'http')),
              API_BATCH_SIZE,
            ),
          ),
        ];
        await Promise.all(requests.map((request) => postLikeTheApi(database.db, queues!, request)));
        // Straight onto the queue (SDK), and duplicate deliveries.
        const jobs = [
          ...due
            .filter(
              (d) =>
                (d.kind === 'first' && d.event.path === 'queue') ||
                d.kind === 'same-job-id' ||
                d.kind === 'new-job-id',
            )
            .map((d) => {
              const jobId = eventJobId(d.event.tenant_id, d.event.event_id);
              return {
                payload: asTaskEvent(d.event, 'queue'),
                options: { jobId: d.kind === 'new-job-id' ? `${jobId}-redelivery` : jobId },
              };
            }),
        ];
        if (jobs.length > 0) await queues!.enqueueBulk(QUEUE_NAMES.supervisorEvents, 'event', jobs);
        fed += due.filter((d) => d.kind === 'first').length;
      }
    })();

    // The chaos: each process works for its planned time after its first claim, then kill -9 and restart.
    const chaos = (async () => {
      for (const workMs of killTimes) {
        const current = worker!;
        const firstClaimAt = await waitForFirstClaim(database.db, current);
        await sleep(firstClaimAt + workMs - Date.now());
        await current.kill();
        const counts = await inboxCounts(database.db, current.startedAt);
        const active = await queues!.get(QUEUE_NAMES.supervisorEvents).getActiveCount();
        const record: KillRecord = {
          atMs: Date.now() - feedStartedAt,
          workedMs: Date.now() - firstClaimAt,
          fed,
          completed: counts.completed,
          abandonedClaims: counts.processingSince,
          activeJobs: active,
          heldJobs: Math.max(0, active - (kills.at(-1)?.activeJobs ?? 0)),
          backlog: fed - counts.completed,
        };
        kills.push(record);
        workerLog.push(...current.recentOutput);
        console.log(
          `kill ${kills.length} at ${(record.atMs / 1000).toFixed(1)} s (${(record.workedMs / 1000).toFixed(1)} s after its first claim): ${record.abandonedClaims} claimed events and ${record.heldJobs} jobs in flight ` +
            `(${record.activeJobs} active jobs in all), ${record.fed} fed, ${record.completed} completed, backlog ${record.backlog}`,
        );
        await startWorker();
      }
    })();
    // Both run to their (bounded) end before a failure of either is reported, so nothing is left running.
    for (const result of await Promise.allSettled([feed, chaos]))
      if (result.status === 'rejected') throw result.reason;
    console.log(
      `feed and kills done at ${((Date.now() - feedStartedAt) / 1000).toFixed(1)} s; process start to ready: ${startupsMs.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s`,
    );

    // Drain: everything fed must end decided (or, wrongly, stuck — the deadline makes that a failure, not a hang).
    const drainStartedAt = Date.now();
    let lastReport = 0;
    for (;;) {
      const counts = await inboxCounts(database.db);
      const unfinished = counts.pending + counts.processing + counts.failed;
      if (counts.total === EVENT_COUNT && unfinished === 0) break;
      if (!worker!.running) throw new Error(`the last worker exited:\n${worker!.recentOutput.join('\n')}`);
      if (Date.now() - drainStartedAt > DRAIN_DEADLINE_MS) {
        console.log(`drain deadline passed: ${JSON.stringify(counts)}`);
        break;
      }
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        console.log(
          `draining: ${counts.total} inbox rows, ${counts.completed} completed, ${counts.pending} pending, ${counts.processing} processing, ${counts.failed} failed, ${counts.dead} dead`,
        );
      }
      await sleep(250);
    }
    console.log(
      `drained ${((Date.now() - drainStartedAt) / 1000).toFixed(1)} s after the feed ended (${((Date.now() - feedStartedAt) / 1000).toFixed(1)} s after it began)`,
    );
    await worker!.stop();
    workerLog.push(...worker!.recentOutput);
    // Jobs BullMQ gave up on (e.g. stalled twice) are harmless only when Postgres knew their events: say how many.
    const queue = queues!.get(QUEUE_NAMES.supervisorEvents);
    const jobCounts = await queue.getJobCounts('active', 'waiting', 'delayed', 'failed', 'completed');
    const failedReasons = new Map<string, number>();
    for (const job of await queue.getFailed(0, 999))
      failedReasons.set(job.failedReason, (failedReasons.get(job.failedReason) ?? 0) + 1);
    console.log(
      `queue after the run: ${JSON.stringify(jobCounts)}; failed jobs by reason: ${JSON.stringify(Object.fromEntries(failedReasons))}`,
    );
    const levels = (level: RegExp) => workerLog.filter((line) => level.test(line)).length;
    console.log(
      `worker logs (last 200 lines of each process): ${levels(/"level":"warn"/)} warnings, ${levels(/"level":"(error|fatal)"/)} errors`,
    );
  }, 200_000);

  afterAll(async () => {
    // Whatever happened above: no process, connection, database or key outlives the test.
    tearingDown = true;
    await Promise.all(started.map((workerProcess) => workerProcess.kill()));
    await queues?.close();
    producer?.disconnect();
    await database?.drop();
    if (prefix) await deleteQueuePrefix(prefix);
    const problems = workerLog.filter((line) => /"level":"(error|fatal)"/.test(line));
    if (problems.length > 0)
      console.log(`worker errors (${problems.length}), last ones:\n${problems.slice(-5).join('\n')}`);
  }, 60_000);

  it('should have killed the worker at least 5 times with events in flight', () => {
    expect(kills.length).toBeGreaterThanOrEqual(5);
    // Every kill left events fed and not yet decided, and work in the process's hands. Most left claimed inbox
    // rows behind; a kill while the worker keeps up with a thin feed may come between a commit and the next claim.
    for (const kill of kills) {
      expect(kill.backlog, `kill at ${kill.atMs} ms (seed ${SEED})`).toBeGreaterThan(0);
      expect(kill.abandonedClaims + kill.heldJobs, `kill at ${kill.atMs} ms (seed ${SEED})`).toBeGreaterThan(
        0,
      );
    }
    expect(
      kills.filter((kill) => kill.abandonedClaims > 0).length,
      `kills that abandoned claims (seed ${SEED})`,
    ).toBeGreaterThanOrEqual(3);
  });

  it('should leave every inbox row completed', async () => {
    const counts = await inboxCounts(database.db);
    const stuck = await database.db
      .selectFrom('supervisor_inbox')
      .select(['tenant_id', 'event_id', 'status', 'attempts', 'error'])
      .where('status', '!=', 'completed')
      .limit(10)
      .execute();
    expect({ ...counts, processingSince: 0, stuck }, `seed ${SEED}`).toEqual({
      pending: 0,
      processing: 0,
      completed: EVENT_COUNT,
      failed: 0,
      dead: 0,
      total: EVENT_COUNT,
      processingSince: 0,
      stuck: [],
    });
  });

  it('should write exactly one decision per event, and none for anything else', async () => {
    const rows = await database.db
      .selectFrom('decisions')
      .select(['tenant_id', 'event_id', 'decision_type'])
      .execute();
    const perEvent = new Map<string, number>();
    for (const row of rows)
      perEvent.set(
        `${row.tenant_id}/${row.event_id}`,
        (perEvent.get(`${row.tenant_id}/${row.event_id}`) ?? 0) + 1,
      );
    const missing = events
      .filter((e) => !perEvent.has(`${e.tenant_id}/${e.event_id}`))
      .map((e) => `${e.tenant_id}/${e.event_id} (${e.path})`);
    const doubled = [...perEvent].filter(([, n]) => n > 1).map(([key]) => key);
    const expected = new Set(events.map((e) => `${e.tenant_id}/${e.event_id}`));
    const unexpected = [...perEvent.keys()].filter((key) => !expected.has(key));
    expect(
      {
        decisions: rows.length,
        missing: missing.slice(0, 10),
        missingCount: missing.length,
        doubled: doubled.slice(0, 10),
        unexpected: unexpected.slice(0, 10),
      },
      `seed ${SEED}`,
    ).toEqual({
      decisions: EVENT_COUNT,
      missing: [],
      missingCount: 0,
      doubled: [],
      unexpected: [],
    });
    const byType = new Map<string, number>();
    for (const row of rows) byType.set(row.decision_type, (byType.get(row.decision_type) ?? 0) + 1);
    console.log(`decisions by type: ${[...byType].map(([type, n]) => `${type} ${n}`).join(', ')}`);
    // The mix is real: the run went through every policy outcome, not just ALLOW.
    for (const type of ['ALLOW', 'PAUSE', 'BLOCK', 'RETRY'])
      expect(byType.get(type) ?? 0, type).toBeGreaterThan(0);
  });

  it('should write exactly one audit row per decision and no audit row without one but policy errors', async () => {
    const audits = await database.db
      .selectFrom('task_audits')
      .select(['decision_id', 'event_type', 'event_id', 'tenant_id'])
      .execute();
    const decisions = await database.db
      .selectFrom('decisions')
      .select(['decision_id', 'tenant_id', 'event_id'])
      .execute();
    const auditsPerDecision = new Map<string, number>();
    for (const audit of audits)
      if (audit.decision_id !== null)
        auditsPerDecision.set(audit.decision_id, (auditsPerDecision.get(audit.decision_id) ?? 0) + 1);
    const withoutAudit = decisions
      .filter((d) => auditsPerDecision.get(d.decision_id) !== 1)
      .map((d) => `${d.tenant_id}/${d.event_id}`);
    const known = new Set(decisions.map((d) => d.decision_id));
    const orphans = audits.filter((a) => a.decision_id !== null && !known.has(a.decision_id));
    const undecided = audits.filter((a) => a.decision_id === null);
    const undecidedTypes = [...new Set(undecided.map((a) => a.event_type))];
    console.log(
      `audit rows: ${audits.length}, without a decision: ${undecided.length} (${undecidedTypes.join(', ') || 'none'})`,
    );
    expect(
      {
        withoutExactlyOneAudit: withoutAudit.slice(0, 10),
        orphans: orphans.length,
        dead: undecided.filter((a) => a.event_type === 'SUPERVISOR_EVENT_DEAD').length,
      },
      `seed ${SEED}`,
    ).toEqual({
      withoutExactlyOneAudit: [],
      orphans: 0,
      dead: 0,
    });
    // A policy over its time budget on a loaded machine fails closed with a SUPERVISOR_ERROR row beside its decision.
    for (const type of undecidedTypes) expect(['SUPERVISOR_ERROR']).toContain(type);
  });

  // A decision opens a gate when its actions say so (PAUSE, REQUIRE_REVIEW); a PAUSE on a task already waiting at
  // an open gate says so without opening another (see the task lifecycle), and nothing else opens one.
  it('should open exactly one gate per decision that pauses and none for the others', async () => {
    const { rows } = await sql<{ decision_type: string; opens_gate: boolean; gates: string }>`
      select d.decision_type, d.actions @> '[{"action_type":"pause_gate"}]'::jsonb as opens_gate, count(g.gate_id) as gates
        from decisions d left join task_gates g on g.tenant_id = d.tenant_id and g.decision_id = d.decision_id
       group by d.decision_id, d.decision_type, d.actions`.execute(database.db);
    const wrong = rows.filter(
      (row) =>
        Number(row.gates) !== (row.opens_gate ? 1 : 0) ||
        (row.opens_gate && !['PAUSE', 'REQUIRE_REVIEW'].includes(row.decision_type)) ||
        (row.decision_type === 'REQUIRE_REVIEW' && !row.opens_gate),
    );
    expect(wrong.slice(0, 10), `seed ${SEED}`).toEqual([]);
  });

  it("should keep every tenant's audit hash chain unbroken", async () => {
    for (const tenant of TENANTS) {
      const rows = await database.db
        .selectFrom('task_audits')
        .select([
          'audit_id',
          'tenant_id',
          'chain_seq',
          'task_id',
          'event_type',
          'level',
          'decision_id',
          'event_id',
          'source_event_ts',
          'processed_at',
          'payload',
          'created_at',
          'hash_version',
          'prev_hash',
          'row_hash',
        ])
        .where('tenant_id', '=', tenant)
        .orderBy('chain_seq')
        .execute();
      const chain = rows.map((row) => ({
        ...toAuditChainContent({
          ...row,
          chain_seq: row.chain_seq ?? 0,
          payload: row.payload as Record<string, unknown>,
        }),
        audit_id: String(row.audit_id),
        prev_hash: row.prev_hash ?? '',
        row_hash: row.row_hash ?? '',
      }));
      expect(rows.length, tenant).toBeGreaterThan(0);
      expect(findChainBreak(chain), `${tenant} (seed ${SEED})`).toBeUndefined();
    }
  });
});
