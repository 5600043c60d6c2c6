/**
 * `pnpm bench:decide` — how fast an agent hears whether it may act: N concurrent agents each guard actions
 * (`TASK_ACTION_PROPOSED` with `Prefer: wait=10`, answered 200 with the decision) through the HTTP API, with
 * the real supervisor-worker deciding. First the most guarded actions per second the stack sustains (closed
 * loop), then the measured round trips at half of that rate, next to a same-run floor: an express handler doing
 * one Postgres transaction and answering, driven at the same rate by the same agents. Goal: p99 ≤ 30 ms and
 * ≤ 2× the floor's p99.
 *
 * Self-contained: its own database, queue prefix and API key, all removed at the end, even on failure or
 * Ctrl-C. The API, the supervisor-worker and the floor each run as a child process started as deployed
 * (`node --import tsx …/main.ts`, configured through env), so the load generator does not share their loop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { ensureTenant, insertApiKey } from '@warden/db';
import { displayPrefix, generateApiKey, hashApiKey } from '@warden/domain';
import { createRedis, decisionStreamKey } from '@warden/queue';
import { createTestDatabase, deleteQueuePrefix, testServers } from '@warden/testing';
import { CleanupStack, createHttpPoster, formatTable, percentile, startJanitor } from './support.js';

const AGENTS = Number(process.env.BENCH_AGENTS ?? 16);
const MAX_ACTIONS = Number(process.env.BENCH_MAX_ACTIONS ?? 1_000);
const HALF_ACTIONS = Number(process.env.BENCH_HALF_ACTIONS ?? 1_000);
const WARMUP_ACTIONS = 300;
const GOAL_P99_MS = 30;
const GOAL_FLOOR_RATIO = 2;
const TENANT = 'bench';
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Child {
  pid: number;
  stop(): Promise<void>;
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

/** Starts `script` with `env` and waits until `readyUrl` answers 2xx. */
async function startChild(
  name: string,
  script: string,
  env: Record<string, string>,
  readyUrl: string,
): Promise<Child> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
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
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exitCode !== undefined) throw new Error(`${name} exited (${String(exitCode)}) before it was ready`);
    const ready = await fetch(readyUrl, { signal: AbortSignal.timeout(1000) }).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${name} was not ready within 60 s`);
    }
    await sleep(100);
  }
  return { pid: child.pid!, stop };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Phase {
  seconds: number;
  latenciesMs: number[];
  /** Answers other than 200 with an ALLOW decision (202 after the wait, errors). */
  failures: number;
}

/**
 * Runs `total` requests from `agents` concurrent agents; each agent sends its next request when the previous
 * one is answered and, with `ratePerSecond`, not before its next slot (`agents / rate` apart), so the offered
 * load is at most that rate. Latency is the round trip of each request.
 */
async function drive(
  total: number,
  agents: number,
  ratePerSecond: number | undefined,
  request: (agent: number, index: number) => Promise<boolean>,
): Promise<Phase> {
  const latenciesMs: number[] = [];
  let failures = 0;
  let next = 0;
  const intervalMs = ratePerSecond === undefined ? 0 : (agents / ratePerSecond) * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: agents }, async (_, agent) => {
      // Agents start spread over one interval, so the paced load is even rather than in bursts.
      let slot = started + (intervalMs * agent) / agents;
      while (next < total) {
        const index = next++;
        const wait = slot - performance.now();
        if (wait > 0) await sleep(wait);
        const begun = performance.now();
        const ok = await request(agent, index).catch(() => false);
        latenciesMs.push(performance.now() - begun);
        if (!ok) failures += 1;
        slot = Math.max(slot + intervalMs, ratePerSecond === undefined ? 0 : performance.now() - intervalMs);
      }
    }),
  );
  return {
    seconds: (performance.now() - started) / 1000,
    latenciesMs: latenciesMs.sort((a, b) => a - b),
    failures,
  };
}

const actionOf = (index: number) =>
  index % 2 === 0
    ? { tool: 'search', input: { q: `query ${index}` } }
    : { tool: 'shell', command: `ls -la src/module-${index % 50}`, cwd: '/work/app' };

async function main(): Promise<void> {
  const cleanup = new CleanupStack();
  const janitor = startJanitor();
  const onSignal = () => {
    void cleanup.run().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const loadBefore = loadavg()[0]!;
  try {
    const database = await createTestDatabase();
    const prefix = `bench-decide-${randomUUID()}`;
    janitor.watch({ databaseUrl: database.url, queuePrefix: prefix });
    cleanup.push('drop database', () => database.drop());
    cleanup.push('delete queue keys', () => deleteQueuePrefix(prefix));

    await ensureTenant(database.db, TENANT);
    const key = generateApiKey();
    await insertApiKey(database.db, {
      tenantId: TENANT,
      name: 'bench',
      owner: 'bench',
      keyHash: hashApiKey(key),
      keyPrefix: displayPrefix(key),
      scopes: ['events:write'],
    });
    await sql`create table bench_decide_floor (event_id text primary key, body jsonb not null)`.execute(
      database.db,
    );

    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: testServers.redisUrl,
      QUEUE_PREFIX: prefix,
      LOG_LEVEL: 'warn',
    };
    const apiPort = await freeLoopbackPort();
    const api = await startChild(
      'the API',
      'services/api/src/main.ts',
      { ...env, PORT: String(apiPort), HOST: '127.0.0.1' },
      `http://127.0.0.1:${apiPort}/readyz`,
    );
    cleanup.push('stop the API', () => api.stop());
    const opsPort = await freeLoopbackPort();
    const worker = await startChild(
      'the supervisor-worker',
      'services/supervisor-worker/src/main.ts',
      { ...env, OPS_PORT: String(opsPort) },
      `http://127.0.0.1:${opsPort}/readyz`,
    );
    cleanup.push('stop the supervisor-worker', () => worker.stop());
    const floorPort = await freeLoopbackPort();
    const floor = await startChild(
      'the floor server',
      'tests/bench/decide-floor-server.ts',
      { DATABASE_URL: database.url, PORT: String(floorPort) },
      `http://127.0.0.1:${floorPort}/readyz`,
    );
    cleanup.push('stop the floor server', () => floor.stop());
    janitor.watch({ pids: [api.pid, worker.pid, floor.pid] });

    const apiUrl = `http://127.0.0.1:${apiPort}/v1/events`;
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json', prefer: 'wait=10' };
    // One kept-alive connection per agent, through the benches' lean client (support.ts: fetch cost the load
    // generator about as much CPU per request as the API spent answering it, on the machine both share).
    const http = createHttpPoster(AGENTS);
    cleanup.push('close the load generator connections', async () => http.close());
    const post = async (url: string, body: unknown, extra: Record<string, string> = headers) => {
      const { status, text } = await http.post(url, extra, JSON.stringify(body));
      const answer = JSON.parse(text) as {
        decisions?: Array<{ decision_type: string; created_at: string }>;
      };
      return { status, answer };
    };

    // One declared task per agent, with the tools the actions use.
    for (let agent = 0; agent < AGENTS; agent++) {
      const { status, answer } = await post(apiUrl, {
        event_id: `create-${agent}`,
        task_id: `agent-${agent}`,
        event_type: 'TASK_CREATED',
        payload: { agent_spec: { name: `agent-${agent}`, capabilities: ['search', 'shell'] } },
      });
      if (status !== 200 || answer.decisions?.[0]?.decision_type !== 'ALLOW')
        throw new Error(`declaring agent-${agent} failed: ${status} ${JSON.stringify(answer)}`);
    }

    let sequence = 0;
    // Where a round trip's time goes: until the supervisor's decision transaction began (its `created_at`,
    // Postgres' transaction time, same machine clock), and from then until the answer arrived.
    const split = {
      toDecision: [] as number[],
      answers: [] as Array<{ eventId: string; decidedAt: number; answeredAt: number }>,
    };
    let recordSplit = false;
    const guard = async (agent: number, index: number) => {
      const sentAt = Date.now();
      const eventId = `act-${++sequence}`;
      const { status, answer } = await post(apiUrl, {
        event_id: eventId,
        task_id: `agent-${agent}`,
        event_type: 'TASK_ACTION_PROPOSED',
        payload: { action: actionOf(index) },
      });
      const decision = answer.decisions?.[0];
      if (recordSplit && decision) {
        const decidedAt = Date.parse(decision.created_at);
        split.toDecision.push(decidedAt - sentAt);
        split.answers.push({ eventId, decidedAt, answeredAt: Date.now() });
      }
      return status === 200 && decision?.decision_type === 'ALLOW';
    };
    const floorUrl = `http://127.0.0.1:${floorPort}/floor`;
    const floorCall = async (agent: number, index: number) => {
      const { status } = await post(
        floorUrl,
        { event_id: `floor-${++sequence}`, task_id: `agent-${agent}`, payload: { action: actionOf(index) } },
        { 'content-type': 'application/json' },
      );
      return status === 200;
    };

    console.log(`warm-up: ${WARMUP_ACTIONS} guarded actions and ${WARMUP_ACTIONS} floor calls`);
    await drive(WARMUP_ACTIONS, AGENTS, undefined, guard);
    await drive(WARMUP_ACTIONS, AGENTS, undefined, floorCall);

    const max = await drive(MAX_ACTIONS, AGENTS, undefined, guard);
    const maxEps = (MAX_ACTIONS - max.failures) / max.seconds;
    const half = maxEps / 2;
    console.log(
      `max: ${maxEps.toFixed(0)} guarded actions/s with ${AGENTS} agents; measuring at ${half.toFixed(0)}/s`,
    );

    recordSplit = true;
    const guarded = await drive(HALF_ACTIONS, AGENTS, half, guard);
    recordSplit = false;
    const floored = await drive(HALF_ACTIONS, AGENTS, half, floorCall);
    const loadAfter = loadavg()[0]!;

    const row = (name: string, phase: Phase) => [
      name,
      (HALF_ACTIONS / phase.seconds).toFixed(0),
      percentile(phase.latenciesMs, 50).toFixed(1),
      percentile(phase.latenciesMs, 99).toFixed(1),
      percentile(phase.latenciesMs, 100).toFixed(1),
      phase.failures,
    ];
    console.log('');
    console.log(
      formatTable(
        ['at half load', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'not allowed/failed'],
        [
          row('guarded action (API + supervisor)', guarded),
          row('floor (express + 1 PG transaction)', floored),
        ],
      ),
    );
    // The stream entry id is the publish time in ms: it splits the supervisor's part from the API's.
    const redis = createRedis(testServers.redisUrl, 'general');
    const publishedAt = new Map<string, number>();
    for (const [id, fields] of await redis.xrange(decisionStreamKey(prefix), '-', '+')) {
      const at = fields.indexOf('event_id');
      if (at >= 0) publishedAt.set(fields[at + 1]!, Number(id.split('-')[0]));
    }
    redis.disconnect();
    const toPublish: number[] = [];
    const toAnswer: number[] = [];
    for (const { eventId, decidedAt, answeredAt } of split.answers) {
      const published = publishedAt.get(eventId);
      if (published === undefined) continue;
      toPublish.push(published - decidedAt);
      toAnswer.push(answeredAt - published);
    }
    const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
    const both = (values: number[]) =>
      `${percentile(sorted(values), 50).toFixed(0)}/${percentile(sorted(values), 99).toFixed(0)} ms`;
    console.log(
      `where a guarded round trip goes (p50/p99): ${both(split.toDecision)} until the decision transaction began (insert, enqueue, supervisor pick-up), ${both(toPublish)} deciding until published, ${both(toAnswer)} from published to answered (wake, read, reply)`,
    );
    const p50 = percentile(guarded.latenciesMs, 50);
    const p99 = percentile(guarded.latenciesMs, 99);
    const floorP99 = percentile(floored.latenciesMs, 99);
    const eps = (HALF_ACTIONS - guarded.failures) / guarded.seconds;
    console.log('');
    console.log(
      `goal: p99 ≤ ${GOAL_P99_MS} ms and ≤ ${GOAL_FLOOR_RATIO}× the floor's p99: ${p99 <= GOAL_P99_MS && p99 <= GOAL_FLOOR_RATIO * floorP99 ? 'met' : 'NOT met'} (p99 ${p99.toFixed(1)} ms = ${(p99 / floorP99).toFixed(2)}× the floor)`,
    );
    const cores = cpus().length;
    if (Math.max(loadBefore, loadAfter) > cores * 0.5)
      console.log(
        `WARNING: the machine was not quiet (load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after, ${cores} cores); the figures are noisy. Rerun on a quiet machine.`,
      );
    if (guarded.failures > 0)
      console.log(`WARNING: ${guarded.failures} guarded actions were not answered ALLOW within the wait`);
    console.log(
      `RESULT decide p50_ms=${p50.toFixed(1)} p99_ms=${p99.toFixed(1)} floor_p99_ms=${floorP99.toFixed(1)} eps=${eps.toFixed(0)} max_eps=${maxEps.toFixed(0)} agents=${AGENTS}`,
    );
  } finally {
    const clean = await cleanup.run();
    await janitor.release();
    if (!clean) process.exitCode = 1;
  }
}

await main();
