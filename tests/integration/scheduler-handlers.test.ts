/**
 * Agent or fallback (docs/scheduler.md: steps 4–5), through the real scheduler: fallback strategies, migration weights
 * (deterministic per fire, the same path on retry), retries with backoff, validation errors never retried,
 * `max_duration_ms`, and HTTP targets through their breaker (a timing-out agent falls back).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TriggerValidationError, type TriggerWorker } from '@warden/client';
import { chooseDecisionMode } from '@warden/domain';
import { createTestDatabase, deleteQueuePrefix, testQueuePrefix, type TestDatabase } from '@warden/testing';
import {
  registerTestTrigger,
  runNow,
  sleep,
  startHandler,
  startTestScheduler,
  testQueues,
  waitForFinished,
  type TestScheduler,
} from '../support/scheduler.js';

const TENANT = 'handlers-acme';
const NEVER = '0 0 1 1 *';

let database: TestDatabase;
let prefix: string;
let scheduler: TestScheduler;
let queues: ReturnType<typeof testQueues>;
let http: Server;
let httpUrl: string;
const workers: TriggerWorker[] = [];
/** Calls each handler saw, by event name and role. */
const calls: Array<{ event: string; role: string; retry: number }> = [];
/** How each trigger's handlers behave, by event name. */
const behaviour = new Map<
  string,
  { agent?: (retry: number) => unknown; fallback?: (retry: number) => unknown }
>();

function handlerFor(role: 'agent' | 'fallback') {
  return async (ctx: { event_name: string; retry_count: number }) => {
    calls.push({ event: ctx.event_name, role, retry: ctx.retry_count });
    const act = behaviour.get(ctx.event_name)?.[role];
    if (!act) return { output: { by: role } };
    return act(ctx.retry_count);
  };
}

beforeAll(async () => {
  database = await createTestDatabase();
  prefix = testQueuePrefix();
  queues = testQueues(prefix);
  scheduler = await startTestScheduler({
    databaseUrl: database.url,
    prefix,
    env: { HTTP_BREAKER_RESET_MS: '1000' },
  });
  workers.push(
    startHandler(prefix, TENANT, 'agent', handlerFor('agent'), { concurrency: 16 }),
    startHandler(prefix, TENANT, 'fallback', handlerFor('fallback'), { concurrency: 16 }),
  );
  http = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const path = req.url ?? '/';
      if (path === '/slow') {
        setTimeout(
          () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"output":"too late"}'),
          3000,
        ).unref();
      } else if (path === '/bad-request') {
        res.writeHead(422, { 'content-type': 'application/json' }).end('{"error":"unknown region"}');
      } else {
        const job = JSON.parse(body) as { context: { event_name: string } };
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            agent_run_id: 'http-run',
            llm_calls: 3,
            cost_usd: 0.02,
            output: { via: 'http', event: job.context.event_name },
          }),
        );
      }
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await Promise.allSettled(workers.map((w) => w.close()));
  await scheduler?.stop();
  http?.closeAllConnections();
  await new Promise((resolve) => http?.close(resolve));
  await queues?.disconnect();
  await database?.drop();
  await deleteQueuePrefix(prefix);
});

const register = (event_name: string, extra: Record<string, unknown> = {}) =>
  registerTestTrigger(database.db, queues, TENANT, {
    event_name,
    expression: NEVER,
    agent: { queue: 'agent' },
    fallback: { queue: 'fallback' },
    ...extra,
  });
const callsOf = (event: string) => calls.filter((c) => c.event === event);
const attemptsOf = (executionId: string) =>
  database.db
    .selectFrom('cron_execution_attempts')
    .selectAll()
    .where('execution_id', '=', executionId)
    .orderBy('try')
    .orderBy('started_at')
    .execute();
const fail = () => {
  throw new Error('agent exploded');
};

describe('fallback_strategy', () => {
  it('on_failure: should run the fallback when the agent fails and finish as fallback', async () => {
    behaviour.set('fs-on-failure', { agent: fail });
    const trigger = await register('fs-on-failure');
    const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(row).toMatchObject({
      status: 'fallback',
      decision_mode: 'agent',
      agent_outcome: 'failed',
      output: { by: 'fallback' },
    });
    expect(row.error).toMatch(/agent failed: agent exploded/);
    expect(callsOf('fs-on-failure').map((c) => c.role)).toEqual(['agent', 'fallback']);
  });

  it('always: should run only the fallback', async () => {
    const trigger = await register('fs-always', { fallback_strategy: 'always' });
    const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(row).toMatchObject({ status: 'fallback', decision_mode: 'fallback', output: { by: 'fallback' } });
    expect(callsOf('fs-always').map((c) => c.role)).toEqual(['fallback']);
  });

  it('never: should fail without running the fallback', async () => {
    behaviour.set('fs-never', { agent: fail });
    const trigger = await register('fs-never', { fallback_strategy: 'never' });
    const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(row).toMatchObject({ status: 'failed', decision_mode: 'agent' });
    expect(callsOf('fs-never').map((c) => c.role)).toEqual(['agent']);
  });

  it('should log a failing fallback and fail the run, never throw past the worker', async () => {
    behaviour.set('fs-both-fail', {
      agent: fail,
      fallback: () => Promise.reject(new Error('legacy job broke')),
    });
    const trigger = await register('fs-both-fail');
    const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(row.status).toBe('failed');
    expect(row.error).toMatch(/agent failed: agent exploded; fallback failed: legacy job broke/);
  });
});

describe('migration_weight', () => {
  it('weight 0 and 1: should always pick the fallback, and the agent', async () => {
    const zero = await register('mw-zero', { migration_weight: 0 });
    const one = await register('mw-one', { migration_weight: 1 });
    expect(await waitForFinished(database.db, await runNow(database.db, queues, zero))).toMatchObject({
      status: 'fallback',
      decision_mode: 'fallback',
    });
    expect(await waitForFinished(database.db, await runNow(database.db, queues, one))).toMatchObject({
      status: 'success',
      decision_mode: 'agent',
    });
  });

  it('weight 0.3: should pick per fire as the hash says, and take the same path on retry', async () => {
    // Each handler fails its first try and succeeds on the retry; with `never`, a failure is retried.
    const flaky = (retry: number) =>
      retry === 0 ? Promise.reject(new Error('first try fails')) : { output: 'ok' };
    behaviour.set('mw-split', { agent: flaky, fallback: flaky });
    const trigger = await register('mw-split', {
      migration_weight: 0.3,
      fallback_strategy: 'never',
      overlap_policy: 'allow',
      retry_on_failure: true,
      max_retries: 2,
      retry_delay_seconds: 1,
    });
    const ids: string[] = [];
    for (let i = 0; i < 24; i++) ids.push(await runNow(database.db, queues, trigger));
    const rows = await Promise.all(ids.map((id) => waitForFinished(database.db, id, 40_000)));
    const modes = new Set<string>();
    for (const row of rows) {
      const expected = chooseDecisionMode({
        trigger_id: trigger.trigger_id,
        scheduled_for: row.scheduled_for,
        mode: 'live',
        fallback_strategy: 'never',
        migration_weight: 0.3,
        has_agent: true,
        has_fallback: true,
      });
      expect(row.decision_mode).toBe(expected);
      expect(row.status).toBe(expected === 'agent' ? 'success' : 'fallback');
      expect(row.retry_count).toBe(1);
      const attempts = await attemptsOf(row.execution_id);
      expect(attempts.map((a) => [a.try, a.role])).toEqual([
        [0, expected],
        [1, expected],
      ]);
      modes.add(expected);
    }
    expect(modes).toEqual(new Set(['agent', 'fallback']));
  }, 60_000);
});

describe('retries', () => {
  it('should retry a failed run with exponential backoff until it succeeds', async () => {
    behaviour.set('retry-backoff', {
      agent: (retry) =>
        retry < 2 ? Promise.reject(new Error(`try ${retry} failed`)) : { output: 'third time' },
    });
    const trigger = await register('retry-backoff', {
      fallback_strategy: 'never',
      retry_on_failure: true,
      max_retries: 3,
      retry_delay_seconds: 1,
    });
    const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger), 30_000);
    expect(row).toMatchObject({ status: 'success', retry_count: 2, output: 'third time' });
    const attempts = await attemptsOf(row.execution_id);
    expect(attempts.map((a) => a.status)).toEqual(['failed', 'failed', 'success']);
    // 1 s, then 2 s (×2): each try starts no sooner than its delay after the previous one ended.
    expect(attempts[1]!.started_at.getTime() - attempts[0]!.completed_at!.getTime()).toBeGreaterThanOrEqual(
      950,
    );
    expect(attempts[2]!.started_at.getTime() - attempts[1]!.completed_at!.getTime()).toBeGreaterThanOrEqual(
      1950,
    );
  }, 40_000);

  it('should give up after max_retries', async () => {
    behaviour.set('retry-give-up', { agent: fail });
    const trigger = await register('retry-give-up', {
      fallback_strategy: 'never',
      retry_on_failure: true,
      max_retries: 1,
      retry_delay_seconds: 1,
    });
    const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger), 30_000);
    expect(row).toMatchObject({ status: 'failed', retry_count: 1 });
    expect(row.error).toMatch(/after 1 retry/);
  });

  it('should never retry a validation error', async () => {
    behaviour.set('retry-validation', {
      agent: () => {
        throw new TriggerValidationError('unknown region "mars"');
      },
    });
    const trigger = await register('retry-validation', {
      fallback_strategy: 'never',
      retry_on_failure: true,
      max_retries: 3,
      retry_delay_seconds: 1,
    });
    const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(row).toMatchObject({ status: 'failed', retry_count: 0 });
    expect(row.error).toMatch(/unknown region "mars".*validation errors are not retried/);
    expect((await attemptsOf(row.execution_id))[0]).toMatchObject({ error_kind: 'validation' });
  });
});

describe('max_duration_ms', () => {
  it('should time out a handler that runs too long and fall back', async () => {
    behaviour.set('duration-slow', { agent: () => sleep(4000).then(() => ({ output: 'too late' })) });
    const trigger = await register('duration-slow', { max_duration_ms: 800 });
    const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(row).toMatchObject({ status: 'fallback', agent_outcome: 'timeout', output: { by: 'fallback' } });
    const [agent] = await attemptsOf(row.execution_id);
    expect(agent).toMatchObject({ role: 'agent', status: 'timeout', error_kind: 'timeout' });
  });
});

describe('HTTP targets', () => {
  it('should call an HTTP agent and record its result', async () => {
    const trigger = await register('http-ok', { agent: { url: `${httpUrl}/run`, timeoutMs: 2000 } });
    const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(row).toMatchObject({
      status: 'success',
      agent_run_id: 'http-run',
      llm_calls: 3,
      output: { via: 'http', event: 'http-ok' },
    });
    expect(Number(row.cost_usd)).toBe(0.02);
  });

  it('should fall back when the HTTP agent times out', async () => {
    const trigger = await register('http-timeout', { agent: { url: `${httpUrl}/slow`, timeoutMs: 500 } });
    const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(row).toMatchObject({ status: 'fallback', agent_outcome: 'timeout', output: { by: 'fallback' } });
    expect(row.error).toMatch(/agent timed out: no answer within the target.s timeoutMs \(500 ms\)/);
  });

  it('should treat a 4xx as a validation error: not retried', async () => {
    const trigger = await register('http-4xx', {
      agent: { url: `${httpUrl}/bad-request`, timeoutMs: 2000 },
      fallback_strategy: 'never',
      retry_on_failure: true,
      max_retries: 3,
      retry_delay_seconds: 1,
    });
    const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    expect(row).toMatchObject({ status: 'failed', retry_count: 0 });
    expect(row.error).toMatch(/HTTP 422/);
  });
});
