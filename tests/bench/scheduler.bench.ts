/**
 * `pnpm bench:scheduler` — how promptly the scheduler starts runs, and what it costs:
 *
 *  (a) sparse: one `@every 1s` trigger for 60 s (queue target, SDK worker) → fire delay (`started_at −
 *      scheduled_for`) p50/p95/p99; in the same run, a bare BullMQ job scheduler with a no-op worker on the same
 *      Redis is the floor (delay = processor start − the fire time in the job id);
 *  (b) burst: 1,000 triggers due in the same minute → p99 delay and executions started per second;
 *  (c) the same 1,000 runs call an HTTP agent that takes 20 s, so 1,000 executions are in flight at once →
 *      the scheduler's RSS while they are.
 *
 * The scheduler runs as a child process, as deployed (`services/scheduler/src/main.ts`), so its RSS is its own.
 * Redis is a private `redis-server --hz 100` (fire lateness is bounded by `hz`: see NOTES), Postgres a fresh
 * database; both are removed at the end, even on failure or Ctrl-C. Goals: p99 ≤ 25 ms sparse, burst p99 ≤ 1 s,
 * RSS ≤ 200 MB. Shorten with BENCH_SPARSE_SECONDS / BENCH_BURST_TRIGGERS for a quick look.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { createTriggerWorker } from '@warden/client';
import { ensureTenant, registerTrigger } from '@warden/db';
import { TriggerDefinitionSchema } from '@warden/domain';
import { WardenQueues, createRedis } from '@warden/queue';
import { createTestDatabase, ensureTemplateDatabase, sleep, waitFor as waitForShared } from '@warden/testing';
import { CleanupStack, formatTable, percentile, startJanitor } from './support.js';

const SPARSE_SECONDS = Number(process.env.BENCH_SPARSE_SECONDS ?? 60);
const BURST_TRIGGERS = Number(process.env.BENCH_BURST_TRIGGERS ?? 1000);
const HTTP_AGENT_MS = 20_000;
const WARMUP_FIRES = 3;
const TENANT = 'bench';
const PREFIX = 'bench-scheduler';
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GOALS = { p99_ms: 25, burst_p99_ms: 1000, rss_mb: 200 };

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function rssMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

const waitFor = <T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<T> => waitForShared(what, probe, { timeoutMs, intervalMs });

function stats(delays: number[]) {
  const sorted = [...delays].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? NaN,
  };
}

async function main(): Promise<void> {
  const cleanup = new CleanupStack();
  const janitor = startJanitor();
  const onSignal = () => void cleanup.run().then(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // A Redis of our own with hz 100 (default installs run hz 10: fires up to 100 ms late).
    const redisPort = await freePort();
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    const redisServer: ChildProcess = spawn(
      'redis-server',
      ['--port', String(redisPort), '--hz', '100', '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'],
      { stdio: 'ignore' },
    );
    cleanup.push('redis-server', async () => {
      redisServer.kill('SIGTERM');
    });
    janitor.watch({ pids: [redisServer.pid!] });
    const admin = createRedis(redisUrl, 'general');
    cleanup.push('redis client', async () => admin.disconnect());
    await waitFor(
      'redis-server',
      async () => ((await admin.ping().catch(() => undefined)) === 'PONG' ? true : undefined),
      10_000,
    );

    await ensureTemplateDatabase();
    const database = await createTestDatabase();
    janitor.watch({ databaseUrl: database.url });
    cleanup.push('database', () => database.drop());
    const db = database.db;
    await ensureTenant(db, TENANT);

    const opsPort = await freePort();
    const profile = process.env.BENCH_CPU_PROF_DIR
      ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF_DIR]
      : [];
    const scheduler = spawn(
      process.execPath,
      [...profile, '--import', 'tsx', 'services/scheduler/src/main.ts'],
      {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          DATABASE_URL: database.url,
          REDIS_URL: redisUrl,
          QUEUE_PREFIX: PREFIX,
          OPS_PORT: String(opsPort),
          LOG_LEVEL: 'warn',
          ...(process.env.FIRE_CONCURRENCY ? { FIRE_CONCURRENCY: process.env.FIRE_CONCURRENCY } : {}),
          RESULT_CONCURRENCY: '32',
          DB_POOL_SIZE: '24',
          RECONCILE_INTERVAL_MS: '600000',
          // The bench's HTTP agent listens on this machine: loopback allowed on purpose (docs/scheduler.md, "Egress").
          EGRESS_ALLOWED_HOSTS: '127.0.0.1,localhost',
          EGRESS_ALLOWED_CIDRS: '127.0.0.0/8,::1/128',
        },
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    janitor.watch({ pids: [scheduler.pid!] });
    cleanup.push('scheduler', async () => {
      if (scheduler.exitCode !== null) return;
      scheduler.kill('SIGTERM');
      await new Promise((resolve) => scheduler.once('exit', resolve));
    });
    await waitFor(
      'the scheduler',
      async () =>
        await fetch(`http://127.0.0.1:${opsPort}/readyz`)
          .then((r) => (r.ok ? true : undefined))
          .catch(() => undefined),
      60_000,
    );

    const producer = createRedis(redisUrl, 'general');
    const queues = new WardenQueues({ connection: producer, prefix: PREFIX });
    cleanup.push('queues', async () => {
      await queues.close();
      producer.disconnect();
    });
    const register = async (input: Record<string, unknown>) => {
      const definition = TriggerDefinitionSchema.parse(input);
      return (
        await db
          .transaction()
          .execute((trx) => registerTrigger(trx, { tenantId: TENANT, definition, actor: 'bench' }))
      ).trigger;
    };

    // ---- (a) sparse, with the floor in the same run --------------------------------------------------------
    const agent = createTriggerWorker('bench-agent', async () => ({ output: null }), {
      tenantId: TENANT,
      connection: redisUrl,
      prefix: PREFIX,
      concurrency: 16,
    });
    cleanup.push('agent worker', () => agent.close());
    const floorConnection = createRedis(redisUrl, 'worker');
    const floorQueue = new Queue('floor', { connection: floorConnection, prefix: PREFIX });
    const floorDelays: number[] = [];
    const floorWorker = new Worker(
      'floor',
      async (job) => {
        const millis = Number(/:(\d+)$/.exec(job.id ?? '')?.[1]);
        floorDelays.push(Date.now() - millis);
      },
      { connection: floorConnection, prefix: PREFIX, concurrency: 1 },
    );
    cleanup.push('floor', async () => {
      await floorWorker.close();
      await floorQueue.close();
      floorConnection.disconnect();
    });

    console.log(
      `(a) one @every 1s trigger for ${SPARSE_SECONDS} s, next to a bare BullMQ job scheduler (the floor)…`,
    );
    const sparse = await register({
      event_name: 'sparse',
      expression: '@every 1s',
      agent: { queue: 'bench-agent' },
      retry_on_failure: false,
    });
    await queues.enqueue('cron-fires', 'reconcile', { trigger_id: sparse.trigger_id });
    await floorQueue.upsertJobScheduler(
      'floor',
      { every: 1000, startDate: Math.ceil(Date.now() / 1000) * 1000 + 1000 },
      { name: 'noop', data: {} },
    );
    await sleep(SPARSE_SECONDS * 1000 + 1500);
    await floorQueue.removeJobScheduler('floor');
    await db
      .updateTable('cron_triggers')
      .set({ enabled: false })
      .where('trigger_id', '=', sparse.trigger_id)
      .execute();
    await queues.enqueue('cron-fires', 'reconcile', { trigger_id: sparse.trigger_id });
    const sparseRows = await db
      .selectFrom('cron_executions')
      .select(['scheduled_for', 'started_at', 'status'])
      .where('trigger_id', '=', sparse.trigger_id)
      .where('started_at', 'is not', null)
      .orderBy('scheduled_for')
      .execute();
    const sparseStats = stats(
      sparseRows.slice(WARMUP_FIRES).map((r) => r.started_at!.getTime() - r.scheduled_for.getTime()),
    );
    const floorStats = stats(floorDelays.slice(WARMUP_FIRES));
    const missed = await db
      .selectFrom('cron_executions')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('trigger_id', '=', sparse.trigger_id)
      .where('skip_reason', '=', 'skipped_missed')
      .executeTakeFirstOrThrow();

    // ---- (b) + (c) 1,000 triggers due in the same minute, each calling a 20 s HTTP agent ----------------------
    let heldRequests = 0;
    const held = new Set<ServerResponse>();
    const httpAgent = createHttpServer((req, res) => {
      req.resume();
      heldRequests += 1;
      held.add(res);
      const timer = setTimeout(() => {
        held.delete(res);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"output":"done"}');
      }, HTTP_AGENT_MS);
      res.on('close', () => clearTimeout(timer));
    });
    httpAgent.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => httpAgent.listen(0, '127.0.0.1', resolve));
    cleanup.push('http agent', async () => {
      for (const res of held) res.destroy();
      httpAgent.closeAllConnections();
      await new Promise((resolve) => httpAgent.close(resolve));
    });
    const agentUrl = `http://127.0.0.1:${(httpAgent.address() as AddressInfo).port}/run`;

    // The minute they are all due in: far enough ahead to register and schedule them, and to run the burst floor
    // (bare BullMQ, the same number of job schedulers due at once) the minute before.
    const due = new Date(Math.ceil((Date.now() + 100_000) / 60_000) * 60_000);
    const expression = `${due.getUTCMinutes()} ${due.getUTCHours()} * * *`;
    console.log(
      `(b) ${BURST_TRIGGERS} triggers due at ${due.toISOString()} ("${expression}" UTC), each calling a ${HTTP_AGENT_MS / 1000} s HTTP agent…`,
    );
    const registeredAt = Date.now();
    for (let i = 0; i < BURST_TRIGGERS; i++) {
      const target =
        process.env.BENCH_BURST_TARGET === 'queue'
          ? { queue: 'bench-agent' }
          : { url: agentUrl, timeoutMs: 60_000 };
      await register({
        event_name: `burst-${i}`,
        expression,
        agent: target,
        retry_on_failure: false,
        max_duration_ms: 120_000,
      });
    }
    await queues.enqueue('cron-fires', 'reconcile', {});
    const cronFires = queues.get('cron-fires');
    await waitFor(
      'every burst trigger to be scheduled',
      async () => ((await cronFires.getJobSchedulersCount()) >= BURST_TRIGGERS ? true : undefined),
      60_000,
      500,
    );
    console.log(`    registered and scheduled in ${round((Date.now() - registeredAt) / 1000)} s`);

    // The burst floor, a minute earlier: bare BullMQ job schedulers with the same kind of pattern, no-op worker.
    const floorDue = new Date(due.getTime() - 60_000);
    if (Date.now() > floorDue.getTime() - 5000)
      throw new Error('registering the burst took too long to fit the floor run before it');
    const floorPattern = `${floorDue.getUTCMinutes()} ${floorDue.getUTCHours()} * * *`;
    const burstFloorQueue = new Queue('floor-burst', { connection: floorConnection, prefix: PREFIX });
    for (let i = 0; i < BURST_TRIGGERS; i++)
      await burstFloorQueue.upsertJobScheduler(
        `floor-${i}`,
        { pattern: floorPattern, tz: 'UTC' },
        { name: 'noop', data: {} },
      );
    const burstFloorDelays: number[] = [];
    const burstFloorWorker = new Worker(
      'floor-burst',
      async (job) => {
        burstFloorDelays.push(Date.now() - Number(/:(\d+)$/.exec(job.id ?? '')?.[1]));
      },
      { connection: floorConnection, prefix: PREFIX, concurrency: 256 },
    );
    cleanup.push('burst floor', async () => {
      await burstFloorWorker.close();
      await burstFloorQueue.close();
    });
    console.log(
      `    burst floor: ${BURST_TRIGGERS} bare BullMQ job schedulers due at ${floorDue.toISOString()}`,
    );
    await waitFor(
      'the burst floor',
      async () => (burstFloorDelays.length >= BURST_TRIGGERS ? true : undefined),
      floorDue.getTime() - Date.now() + 60_000,
      100,
    );
    await burstFloorWorker.close();
    const burstFloorStats = stats(burstFloorDelays);
    console.log(`    waiting for ${due.toISOString()}`);
    if (Date.now() > due.getTime() - 2000) throw new Error('the burst floor ran into the burst');

    let peakRunning = 0;
    let rssAtPeak = NaN;
    const burstRows = await waitFor(
      'the burst to be in flight',
      async () => {
        const running = await db
          .selectFrom('cron_executions')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .where('status', '=', 'running')
          .where('event_name', 'like', 'burst-%')
          .executeTakeFirstOrThrow();
        const n = Number(running.n);
        if (n > peakRunning) {
          peakRunning = n;
          rssAtPeak = rssMb(scheduler.pid!).rss;
        }
        const started = await db
          .selectFrom('cron_executions')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .where('started_at', 'is not', null)
          .where('event_name', 'like', 'burst-%')
          .executeTakeFirstOrThrow();
        if (
          process.env.BENCH_BURST_TARGET === 'queue'
            ? Number(started.n) < BURST_TRIGGERS
            : n < BURST_TRIGGERS || heldRequests < BURST_TRIGGERS
        )
          return undefined;
        return db
          .selectFrom('cron_executions')
          .select(['scheduled_for', 'started_at'])
          .where('event_name', 'like', 'burst-%')
          .where('started_at', 'is not', null)
          .execute();
      },
      due.getTime() - Date.now() + 60_000,
      250,
    );
    // Hold the 1,000 calls open a few seconds, sampling the scheduler's memory.
    let rssInFlight = rssAtPeak;
    for (let i = 0; i < 10; i++) {
      rssInFlight = Math.max(rssInFlight, rssMb(scheduler.pid!).rss);
      await sleep(500);
    }
    const burstDelays = burstRows.map((r) => r.started_at!.getTime() - r.scheduled_for.getTime());
    const burstStats = stats(burstDelays);
    const lastStart = Math.max(...burstRows.map((r) => r.started_at!.getTime()));
    const burstRate = burstRows.length / Math.max(0.001, (lastStart - due.getTime()) / 1000);
    const memory = rssMb(scheduler.pid!);

    console.log('');
    console.log(
      formatTable(
        ['phase', 'fires', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'note'],
        [
          [
            '(a) scheduler, @every 1s',
            sparseStats.n,
            round(sparseStats.p50),
            round(sparseStats.p95),
            round(sparseStats.p99),
            round(sparseStats.max),
            `${missed.n} missed; goal p99 ≤ ${GOALS.p99_ms} ms`,
          ],
          [
            '(a) floor: bare BullMQ job scheduler',
            floorStats.n,
            round(floorStats.p50),
            round(floorStats.p95),
            round(floorStats.p99),
            round(floorStats.max),
            'no-op worker, same Redis',
          ],
          [
            '(b) burst: 1 000 due at once',
            burstStats.n,
            round(burstStats.p50),
            round(burstStats.p95),
            round(burstStats.p99),
            round(burstStats.max),
            `${round(burstRate)} executions started/s; goal p99 ≤ ${GOALS.burst_p99_ms} ms`,
          ],
          [
            '(b) floor: bare BullMQ, 1 000 due at once',
            burstFloorStats.n,
            round(burstFloorStats.p50),
            round(burstFloorStats.p95),
            round(burstFloorStats.p99),
            round(burstFloorStats.max),
            'no-op worker, same Redis, a minute before',
          ],
        ],
      ),
    );
    console.log('');
    console.log(
      formatTable(
        ['(c) scheduler memory', 'MB'],
        [
          [`RSS with ${peakRunning} executions in flight (HTTP calls open)`, round(rssInFlight)],
          ['peak RSS of the run (VmHWM)', round(memory.peak)],
        ],
      ),
    );
    console.log(
      `goal RSS ≤ ${GOALS.rss_mb} MB; Redis hz 100; ${BURST_TRIGGERS} triggers; executions in flight at the sample: ${peakRunning}`,
    );
    // Issue 12: the burst's p99 within 1.2× bare BullMQ's in the same run.
    const burstRatio = burstStats.p99 / burstFloorStats.p99;
    console.log(
      `goal burst p99 ≤ 1.2 × the burst floor's: ${burstRatio <= 1.2 ? 'met' : 'NOT met'} (${round(burstRatio, 2)} ×)`,
    );
    console.log(
      `RESULT scheduler p99_ms=${round(sparseStats.p99)} floor_p99_ms=${round(floorStats.p99)} burst1000_p99_ms=${round(burstStats.p99)} rss_mb=${round(rssInFlight)} burst_floor_p99_ms=${round(burstFloorStats.p99)} burst_ratio=${round(burstRatio, 2)}`,
    );
  } finally {
    await cleanup.run();
    await janitor.release();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
