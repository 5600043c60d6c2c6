/**
 * A handler worker killed mid-run (SIGKILL, no goodbye): the execution must end `failed` or be retried —
 * never stay `running`. The call's deadline (`max_duration_ms`) times it out; with retries on, the retry goes
 * to a worker that is alive.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestDatabase,
  deleteQueuePrefix,
  testQueuePrefix,
  testServers,
  type TestDatabase,
} from '@warden/testing';
import {
  REPO_ROOT,
  registerTestTrigger,
  runNow,
  startTestScheduler,
  testQueues,
  waitForFinished,
  waitUntil,
  type TestScheduler,
} from '../support/scheduler.js';

const TENANT = 'kill-acme';
let database: TestDatabase;
let prefix: string;
let scheduler: TestScheduler;
let queues: ReturnType<typeof testQueues>;
const children: ChildProcess[] = [];

/** Starts a handler worker process; resolves once it listens. `lines` collects its output. */
async function startWorkerProcess(mode: 'hang' | 'ok'): Promise<{ child: ChildProcess; lines: string[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/support/scheduler-handler-worker.ts'], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      TENANT,
      QUEUE: 'kill-agent',
      QUEUE_PREFIX: prefix,
      REDIS_URL: testServers.redisUrl,
      MODE: mode,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines: string[] = [];
  child.stdout!.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
  await waitUntil(`the ${mode} worker to be ready`, async () => lines.includes('ready'), {
    timeoutMs: 30_000,
  });
  return { child, lines };
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

beforeAll(async () => {
  database = await createTestDatabase();
  prefix = testQueuePrefix();
  queues = testQueues(prefix);
  scheduler = await startTestScheduler({ databaseUrl: database.url, prefix });
});

afterAll(async () => {
  await Promise.all(children.map(kill));
  await scheduler?.stop();
  await queues?.disconnect();
  await database?.drop();
  await deleteQueuePrefix(prefix);
});

const attemptsOf = (executionId: string) =>
  database.db
    .selectFrom('cron_execution_attempts')
    .selectAll()
    .where('execution_id', '=', executionId)
    .orderBy('try')
    .execute();

describe('when the handler worker is killed mid-run', () => {
  it('should time the call out and retry it on a live worker', async () => {
    const trigger = await registerTestTrigger(database.db, queues, TENANT, {
      event_name: 'kill-retry',
      expression: '0 0 1 1 *',
      agent: { queue: 'kill-agent' },
      fallback_strategy: 'never',
      max_duration_ms: 3000,
      retry_on_failure: true,
      max_retries: 2,
      retry_delay_seconds: 1,
    });
    const doomed = await startWorkerProcess('hang');
    const executionId = await runNow(database.db, queues, trigger);
    await waitUntil('the call to start in the doomed worker', async () =>
      doomed.lines.some((l) => l.startsWith(`started ${executionId}`)),
    );
    await kill(doomed.child);
    const healthy = await startWorkerProcess('ok');

    const row = await waitForFinished(database.db, executionId, 40_000);
    expect(row).toMatchObject({ status: 'success', retry_count: 1 });
    const attempts = await attemptsOf(executionId);
    expect(attempts.map((a) => [a.try, a.status])).toEqual([
      [0, 'timeout'],
      [1, 'success'],
    ]);
    expect(healthy.lines.some((l) => l === `started ${executionId} 1`)).toBe(true);
    await kill(healthy.child);
  }, 90_000);

  it('should end failed, not stuck running, when nothing is left to run it', async () => {
    const trigger = await registerTestTrigger(database.db, queues, TENANT, {
      event_name: 'kill-fail',
      expression: '0 0 1 1 *',
      agent: { queue: 'kill-agent' },
      fallback_strategy: 'never',
      max_duration_ms: 2000,
      retry_on_failure: false,
    });
    const doomed = await startWorkerProcess('hang');
    const executionId = await runNow(database.db, queues, trigger);
    await waitUntil('the call to start', async () =>
      doomed.lines.some((l) => l.startsWith(`started ${executionId}`)),
    );
    await kill(doomed.child);
    const row = await waitForFinished(database.db, executionId, 30_000);
    expect(row.status).toBe('failed');
    expect(row.error).toMatch(/agent timed out: no result within 2000 ms/);
    expect(
      (
        await database.db
          .selectFrom('cron_executions')
          .select('execution_id')
          .where('status', '=', 'running')
          .execute()
      ).length,
    ).toBe(0);
  }, 60_000);
});
