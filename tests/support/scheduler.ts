/**
 * Helpers for the scheduler suites: the real scheduler in this process (or as a child process) over a test's own
 * database and queue prefix, triggers registered the way the API registers them, trigger workers from the SDK,
 * manual runs, and wait-until helpers that poll the ledger in Postgres against a deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { createTriggerWorker, type TriggerHandler, type TriggerWorker } from '@warden/client';
import {
  ensureTenant,
  registerTrigger,
  requestManualRun,
  type CronExecutionRow,
  type Db,
  type TriggerRecord,
} from '@warden/db';
import { TriggerDefinitionSchema, type TriggerDefinitionInput } from '@warden/domain';
import { WardenQueues, createRedis } from '@warden/queue';
import { testServers, waitFor, sleep as sharedSleep, type WaitOptions } from '@warden/testing';
// The tests package does not list the scheduler as a dependency, so it is imported by path.
import {
  createService,
  loadConfig,
  type Config,
  type SchedulerService,
} from '../../services/scheduler/src/index.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface TestScheduler {
  service: SchedulerService;
  config: Config;
  stop(): Promise<void>;
}

/**
 * The real scheduler in this process. Quick sweeper settings so lost work is found within seconds; the
 * periodic reconcile is slow (tests reconcile by queueing a job, as the API does); no built-in triggers unless
 * `env` turns them on.
 */
export async function startTestScheduler(options: {
  databaseUrl: string;
  prefix: string;
  env?: Record<string, string>;
}): Promise<TestScheduler> {
  const config = loadConfig({
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: testServers.redisUrl,
    QUEUE_PREFIX: options.prefix,
    OPS_PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DB_POOL_SIZE: '8',
    FIRE_CONCURRENCY: '16',
    SWEEP_INTERVAL_MS: '1000',
    SWEEP_GRACE_MS: '1500',
    RECONCILE_INTERVAL_MS: '600000',
    STOP_GRACE_MS: '2000',
    // Tests call servers on this machine: loopback is allowed on purpose (the egress tests narrow it).
    EGRESS_ALLOWED_HOSTS: '127.0.0.1,localhost',
    EGRESS_ALLOWED_CIDRS: '127.0.0.0/8,::1/128',
    // The built-in lead-scan triggers have their own suite (lead-scan-triggers.test.ts); elsewhere they would
    // be extra triggers in the lists and plans other suites check.
    LEAD_SCAN_TRIGGERS: 'off',
    ...options.env,
  });
  const service = createService(config);
  await service.start();
  return { service, config, stop: () => service.stop() };
}

/** A queue producer on the test prefix (manual runs, reconcile jobs), like the API's. */
export function testQueues(prefix: string): WardenQueues & { disconnect(): Promise<void> } {
  const connection = createRedis(testServers.redisUrl, 'general');
  const queues = new WardenQueues({ connection, prefix }) as WardenQueues & { disconnect(): Promise<void> };
  queues.disconnect = async () => {
    await queues.close();
    connection.disconnect();
  };
  return queues;
}

/**
 * Registers a trigger as `POST /v1/triggers` does (validated, audited) and asks the scheduler to reconcile it.
 * Short defaults for tests: no retries unless asked, a 10 s call deadline.
 */
export async function registerTestTrigger(
  db: Db,
  queues: WardenQueues,
  tenantId: string,
  input: TriggerDefinitionInput,
  options: { force?: boolean } = {},
): Promise<TriggerRecord> {
  await ensureTenant(db, tenantId);
  const definition = TriggerDefinitionSchema.parse({
    retry_on_failure: false,
    max_duration_ms: 10_000,
    ...input,
  });
  const change = await db
    .transaction()
    .execute((trx) =>
      registerTrigger(trx, { tenantId, definition, actor: 'test', force: options.force ?? false }),
    );
  await queues.enqueue('cron-fires', 'reconcile', { trigger_id: change.trigger.trigger_id });
  return change.trigger;
}

/** Trigger-now, as `POST /v1/triggers/:name/run` does: the manual row, then its fire job. */
export async function runNow(
  db: Db,
  queues: WardenQueues,
  trigger: TriggerRecord,
  options: { params?: Record<string, unknown>; overrideOverlap?: boolean } = {},
): Promise<string> {
  const run = await db.transaction().execute((trx) =>
    requestManualRun(trx, {
      tenant_id: trigger.tenant_id,
      trigger_id: trigger.trigger_id,
      event_name: trigger.definition.event_name,
      params: options.params ?? {},
      override_overlap: options.overrideOverlap ?? false,
      actor: 'test',
    }),
  );
  await queues.enqueue(
    'cron-fires',
    'fire',
    {
      tenant_id: trigger.tenant_id,
      trigger_id: trigger.trigger_id,
      scheduled_for: run.scheduled_for.toISOString(),
    },
    { jobId: `manual-${run.execution_id}` },
  );
  return run.execution_id;
}

/** An SDK trigger worker on the test prefix. */
export function startHandler(
  prefix: string,
  tenantId: string,
  queue: string,
  handler: TriggerHandler,
  options: { concurrency?: number; stalledIntervalMs?: number } = {},
): TriggerWorker {
  return createTriggerWorker(queue, handler, {
    tenantId,
    connection: testServers.redisUrl,
    prefix,
    concurrency: options.concurrency ?? 4,
    ...(options.stalledIntervalMs !== undefined ? { stalledIntervalMs: options.stalledIntervalMs } : {}),
  });
}

export async function executions(db: Db, triggerId: string): Promise<CronExecutionRow[]> {
  return db
    .selectFrom('cron_executions')
    .selectAll()
    .where('trigger_id', '=', triggerId)
    .orderBy('scheduled_for')
    .execute();
}

export async function execution(db: Db, executionId: string): Promise<CronExecutionRow | undefined> {
  return db
    .selectFrom('cron_executions')
    .selectAll()
    .where('execution_id', '=', executionId)
    .executeTakeFirst();
}

/** Waits until the execution is finished (not pending or running) and returns it. */
export async function waitForFinished(
  db: Db,
  executionId: string,
  timeoutMs = 20_000,
): Promise<CronExecutionRow> {
  return waitUntil(
    `execution ${executionId} to finish`,
    async () => {
      const row = await execution(db, executionId);
      return row && row.status !== 'pending' && row.status !== 'running' ? row : undefined;
    },
    { timeoutMs },
  );
}

/** The trigger's audit rows (pauses, resumes, weight changes, breaker transitions…), oldest first. */
export async function triggerAudits(db: Db, tenantId: string, eventName: string) {
  return db
    .selectFrom('task_audits')
    .select(['event_type', 'level', 'payload', 'created_at'])
    .where('tenant_id', '=', tenantId)
    .where('task_id', '=', `trigger:${eventName}`)
    .orderBy('audit_id')
    .execute();
}

/** Counts of rows per scheduled_for that occur more than once (must always be empty). */
export async function duplicateFires(
  db: Db,
  triggerId: string,
): Promise<Array<{ scheduled_for: Date; n: string }>> {
  const result = await sql<{ scheduled_for: Date; n: string }>`
    select scheduled_for, count(*) as n from cron_executions where trigger_id = ${triggerId} group by scheduled_for having count(*) > 1`.execute(
    db,
  );
  return result.rows;
}

/** The shared {@link waitFor} under the name the scheduler tests use (20 s and 100 ms between probes by default). */
export function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  options: WaitOptions = {},
): Promise<T> {
  return waitFor(what, probe, { timeoutMs: 20_000, intervalMs: 100, ...options });
}

export const sleep = sharedSleep;

/** A scheduler as a child process (`node --import tsx services/scheduler/src/main.ts`), as deployed. */
export interface SchedulerProcess {
  child: ChildProcess;
  /** Resolves once it logged "scheduler started". */
  ready: Promise<void>;
  /** SIGTERM and wait for the exit; SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<number | null>;
  output(): string;
}

export function spawnScheduler(env: Record<string, string>): SchedulerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/scheduler/src/main.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', OPS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let resolveReady: () => void;
  let rejectReady: (error: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.includes('"scheduler started"')) resolveReady();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then((code) =>
    rejectReady(new Error(`scheduler exited (${code}) before it was ready:\n${output.slice(-2000)}`)),
  );
  return {
    child,
    ready,
    output: () => output,
    async stop(timeoutMs = 20_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
