/**
 * Services under faults: every service runs as deployed (its `main.ts`, configured through env) against a
 * Postgres and a Redis of this test's own. While events arrive through the API, Postgres is restarted
 * (`pg_ctl stop -m fast`: every session ends with 57P01 admin_shutdown), then Redis is killed and started again
 * empty. No process may exit; the API answers 503 with `Retry-After` while Postgres is away (never a 500); and
 * once both are back every event the API accepted is decided, with nobody stepping in.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, ensureTenant, insertApiKey, type Db } from '@warden/db';
import { displayPrefix, generateApiKey, hashApiKey } from '@warden/domain';
import { sleep, waitFor } from '@warden/testing';
import { ownPostgresServer, type OwnPostgres } from '../support/own-postgres.js';
import { freePort, ownRedisServer, type OwnRedis } from '../support/supervisor.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TENANT = 'chaos-deps';
/** How long each dependency stays away: long enough for every service to notice and for requests to land in it. */
const OUTAGE_MS = 3000;
/** Requests in flight at once while the load runs. */
const LOAD_CONCURRENCY = 4;

/**
 * The services under test: entry point, the env var of the port it answers `/readyz` on, extra settings.
 * `required: false`: taken along when it starts in this checkout (its own configuration may be mid-change), and
 * then held to the same rules.
 */
const SERVICES = [
  {
    name: 'api',
    entry: 'services/api/src/main.ts',
    portEnv: 'PORT',
    required: true,
    env: { AUTH_CACHE_TTL_MS: '0' },
  },
  {
    name: 'supervisor-worker',
    entry: 'services/supervisor-worker/src/main.ts',
    portEnv: 'OPS_PORT',
    required: true,
    // A short poll: events whose jobs the empty Redis lost are re-enqueued from the inbox within seconds.
    env: { POLL_INTERVAL_MS: '500', POLL_GRACE_MS: '1000', CLAIM_TTL_MS: '3000', DB_POOL_SIZE: '4' },
  },
  {
    name: 'lead-miner',
    entry: 'services/lead-miner/src/main.ts',
    portEnv: 'OPS_PORT',
    required: true,
    env: {},
  },
  {
    name: 'scheduler',
    entry: 'services/scheduler/src/main.ts',
    portEnv: 'OPS_PORT',
    required: false,
    env: {},
  },
  { name: 'executor', entry: 'services/executor/src/main.ts', portEnv: 'OPS_PORT', required: false, env: {} },
] as const;

/** A process must not outlive the test run, even when teardown does not get to the end. */
const liveProcesses = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of liveProcesses) child.kill('SIGKILL');
});

class ServiceProcess {
  exitStatus: number | string | null | undefined;
  private readonly output: string[] = [];
  private readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly port: number,
    readonly required: boolean,
  ) {
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitStatus = code ?? signal;
        resolve();
      }),
    );
    const keep = (chunk: Buffer) => {
      this.output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (this.output.length > 100) this.output.splice(0, this.output.length - 100);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  static async start(service: (typeof SERVICES)[number], env: Record<string, string>) {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', service.entry], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, ...service.env, [service.portEnv]: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    liveProcesses.add(child);
    child.once('exit', () => liveProcesses.delete(child));
    return new ServiceProcess(service.name, child, port, service.required);
  }

  get running(): boolean {
    return this.exitStatus === undefined;
  }

  /** What the process said last (warn and above): the reason it exited, when it did. */
  describe(): string {
    return `${this.name} (exit ${String(this.exitStatus)}):\n  ${this.output.slice(-40).join('\n  ')}`;
  }

  async ready(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await waitFor(
      `${this.name} /readyz 200`,
      async () => {
        // An exit ends the wait at once (a throw from the probe would only count as "not yet").
        if (!this.running || Date.now() > deadline) return true;
        const response = await fetch(`http://127.0.0.1:${this.port}/readyz`, {
          signal: AbortSignal.timeout(2000),
        });
        return response.ok;
      },
      { timeoutMs: timeoutMs + 5000, intervalMs: 100 },
    );
    if (!this.running || Date.now() > deadline)
      throw new Error(
        `${this.name} ${this.running ? `was not ready within ${timeoutMs} ms` : 'exited'}: ${this.describe()}`,
      );
  }

  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

interface Reply {
  status: number;
  code?: string;
  retryAfter: string | null;
  phase: string;
}

describe('every service rides out a Postgres restart and a Redis restart under load', () => {
  let postgres: OwnPostgres | undefined;
  let redis: OwnRedis | undefined;
  let db: Db | undefined;
  let policyDir: string | undefined;
  /** The services held to the rules; `everyProcess` also has those left out, for teardown. */
  const processes: ServiceProcess[] = [];
  const everyProcess: ServiceProcess[] = [];
  const accepted: string[] = [];
  const replies: Reply[] = [];
  let phase = 'warm-up';

  beforeAll(async () => {
    postgres = await ownPostgresServer();
    redis = await ownRedisServer();
    await redis.start();
    // The WriteGate's defaults (every field has one): this test is about faults, not about the repository's policy.
    policyDir = mkdtempSync(join(tmpdir(), 'warden-chaos-'));
    const writeGatePolicy = join(policyDir, 'writegate.yaml');
    writeFileSync(writeGatePolicy, 'version: chaos\n');
    const env = {
      WRITEGATE_POLICY_FILE: writeGatePolicy,
      DATABASE_URL: postgres.url,
      REDIS_URL: redis.url,
      QUEUE_PREFIX: 'chaos',
      LOG_LEVEL: 'warn',
      // No scheduled lead scans: the scheduler's built-in lead-scan triggers would fire at 02:00 anyway.
      LEAD_SCAN_TRIGGERS: 'off',
    };
    const started = await Promise.all(SERVICES.map((service) => ServiceProcess.start(service, env)));
    everyProcess.push(...started);
    await Promise.all(
      started.map(async (service) => {
        try {
          await service.ready();
          processes.push(service);
        } catch (error) {
          if (service.required) throw error;
          console.warn(`left out, as it does not start in this checkout: ${(error as Error).message}`);
          await service.stop();
        }
      }),
    );
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled(everyProcess.map((p) => p.stop()));
    await db?.destroy().catch(() => {});
    await redis?.stop().catch(() => {});
    await postgres?.destroy();
    if (policyDir) rmSync(policyDir, { recursive: true, force: true });
  }, 60_000);

  it('no process exits, the API answers 503 (never 500) while Postgres is away, and every accepted event is decided', async () => {
    // The test's own pool: it sees the restart too, and must come through it like the services' pools.
    db = createDb({ url: postgres!.url, maxConnections: 2 });
    await ensureTenant(db, TENANT);
    const key = generateApiKey();
    await insertApiKey(db, {
      tenantId: TENANT,
      name: 'chaos',
      owner: 'dependency-restart test',
      keyHash: hashApiKey(key),
      keyPrefix: displayPrefix(key),
      scopes: ['events:write', 'tasks:read'],
    });
    const api = processes.find((p) => p.name === 'api')!;

    let sent = 0;
    let loadRunning = true;
    const sender = async () => {
      while (loadRunning) {
        const eventId = `evt-${sent++}`;
        const atPhase = phase;
        try {
          const response = await fetch(`http://127.0.0.1:${api.port}/v1/events`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({
              event_id: eventId,
              task_id: `task-${sent % 20}`,
              event_type: 'TASK_STATE_CHANGED',
              payload: { from: 'running', to: 'running' },
            }),
            signal: AbortSignal.timeout(15_000),
          });
          const body = (await response.json().catch(() => ({}))) as { error?: { code?: string } };
          replies.push({
            status: response.status,
            ...(body.error?.code ? { code: body.error.code } : {}),
            retryAfter: response.headers.get('retry-after'),
            phase: atPhase,
          });
          if (response.status === 202) accepted.push(eventId);
        } catch (error) {
          replies.push({ status: 0, code: (error as Error).message, retryAfter: null, phase: atPhase });
        }
        await sleep(20);
      }
    };
    const load = Promise.all(Array.from({ length: LOAD_CONCURRENCY }, sender));
    const acceptedBy = () => accepted.length;
    /** `waitFor`, but a service that exits ends the wait at once, with what it said last. */
    const waitWhileAlive = async (what: string, probe: () => boolean, timeoutMs = 30_000) => {
      await waitFor(what, () => probe() || processes.some((p) => !p.running), { timeoutMs });
      const exited = processes.filter((p) => !p.running);
      if (exited.length > 0)
        throw new Error(`while waiting for ${what}: ${exited.map((p) => p.describe()).join('\n')}`);
    };

    try {
      await waitWhileAlive('events accepted before the faults', () => acceptedBy() >= 40);

      phase = 'postgres-down';
      await postgres!.stop();
      await sleep(OUTAGE_MS);
      phase = 'postgres-restarting';
      await postgres!.start();
      const before = acceptedBy();
      await waitWhileAlive(
        'the API to accept events again after Postgres came back',
        () => acceptedBy() > before + 20,
      );

      phase = 'redis-down';
      await redis!.stop();
      await sleep(OUTAGE_MS);
      phase = 'redis-restarting';
      await redis!.start();
      const afterRedis = acceptedBy();
      await waitWhileAlive(
        'more events accepted after Redis came back',
        () => acceptedBy() > afterRedis + 20,
      );
      phase = 'recovered';
    } finally {
      loadRunning = false;
      await load;
      const tally = new Map<string, number>();
      for (const r of replies) {
        const key = `${r.phase} ${r.status}${r.code ? ` ${r.code}` : ''}`;
        tally.set(key, (tally.get(key) ?? 0) + 1);
      }
      console.log('replies by phase:', Object.fromEntries(tally));
    }

    const exited = processes.filter((p) => !p.running);
    expect(exited.map((p) => p.describe())).toEqual([]);

    const byStatus = (status: number) => replies.filter((r) => r.status === status);
    // Nothing but accepted or "come back later": no 500, no dropped connection.
    const unexpected = replies
      .filter((r) => r.status !== 202 && r.status !== 503)
      .map((r) => `${r.phase}: ${r.status} ${r.code ?? ''}`);
    expect([...new Set(unexpected)]).toEqual([]);
    const unavailable = byStatus(503);
    expect(unavailable.filter((r) => r.phase.startsWith('postgres')).length).toBeGreaterThan(0);
    for (const reply of unavailable) {
      expect(reply.code).toBe('unavailable');
      expect(Number(reply.retryAfter)).toBeGreaterThan(0);
    }

    // Every service says it is ready again, by itself.
    await Promise.all(processes.map((p) => p.ready(30_000)));

    // Nothing accepted is lost: each has its decision (the Redis restart emptied the queues; the poller refills them).
    await waitFor(
      `decisions for all ${accepted.length} accepted events`,
      async () => {
        const rows = await db!
          .selectFrom('decisions')
          .select('event_id')
          .where('tenant_id', '=', TENANT)
          .execute();
        const decided = new Set(rows.map((r) => r.event_id));
        const missing = accepted.filter((id) => !decided.has(id));
        return missing.length === 0 || (false as const);
      },
      { timeoutMs: 45_000, intervalMs: 250 },
    );
    expect(processes.filter((p) => !p.running).map((p) => p.describe())).toEqual([]);
    console.log(
      `dependency restart: ${replies.length} requests, ${accepted.length} accepted, ${unavailable.length} answered 503`,
    );
  }, 150_000);
});
