/**
 * The egress policy on real sockets (docs/scheduler.md, "Egress"): the scheduler's HTTP targets and the
 * executor's HTTP health checks go only to allowed hosts, a name is checked on every address it resolves to
 * (so an allowed name pointing at loopback or a metadata address is refused before any byte is sent),
 * redirects are never followed, and error bodies are stored redacted and cut.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HandlerJob, HealthCheck } from '@warden/domain';
import { EgressGuard, EgressRefusedError } from '@warden/runtime';
import { createTestDatabase, deleteQueuePrefix, testQueuePrefix, type TestDatabase } from '@warden/testing';
import { HttpHandlerClient } from '../../services/scheduler/src/index.js';
import { HealthChecker } from '../../services/executor/src/health-checker.js';
import {
  registerTestTrigger,
  runNow,
  startTestScheduler,
  testQueues,
  waitForFinished,
  type TestScheduler,
} from '../support/scheduler.js';

/** Every request the local server saw, by path: a refused call must leave no trace here. */
const hits: string[] = [];
let server: Server;
let port: number;

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    hits.push(req.url ?? '/');
    req.resume();
    req.on('end', () => {
      if (req.url === '/redirect')
        res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
      else if (req.url === '/redirect-local') res.writeHead(307, { location: '/ok' }).end();
      else if (req.url === '/leaky')
        res.writeHead(500, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            error: 'db down',
            api_key: 'sk-live-123456',
            dsn: 'postgres://u:hunter2@db/x',
          }) +
            ' wdn_abcdefghijkl ' +
            'x'.repeat(5000),
        );
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"output":"ok"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const job = { context: { event_name: 'egress' } } as unknown as HandlerJob;
const inOneSecond = () => new Date(Date.now() + 2000);

describe('the scheduler, with loopback refused (EGRESS_ALLOWED_HOSTS=localhost, no CIDR)', () => {
  const TENANT = 'egress-acme';
  let database: TestDatabase;
  let prefix: string;
  let scheduler: TestScheduler;
  let queues: ReturnType<typeof testQueues>;

  beforeAll(async () => {
    database = await createTestDatabase();
    prefix = testQueuePrefix();
    queues = testQueues(prefix);
    scheduler = await startTestScheduler({
      databaseUrl: database.url,
      prefix,
      env: { EGRESS_ALLOWED_HOSTS: 'localhost', EGRESS_ALLOWED_CIDRS: '' },
    });
  });
  afterAll(async () => {
    await scheduler?.stop();
    await queues?.disconnect();
    await database?.drop();
    await deleteQueuePrefix(prefix);
  });

  it.each([
    ['an allowed name that resolves to loopback', 'localhost', /"localhost" resolves to \S+ is a loopback/],
    ['a host that is not on the list', '127.0.0.1', /host "127\.0\.0\.1" is not in EGRESS_ALLOWED_HOSTS/],
    ['loopback spelled as a mapped IPv6 address', '[::ffff:127.0.0.1]', /not in EGRESS_ALLOWED_HOSTS/],
  ])('should refuse %s as a validation failure, without a request', async (_label, host, message) => {
    const before = hits.length;
    const trigger = await registerTestTrigger(database.db, queues, TENANT, {
      event_name: `egress-${hits.length}-${host.replace(/\W/g, '')}`,
      expression: '0 0 1 1 *',
      agent: { url: `http://${host}:${port}/run`, timeoutMs: 2000 },
      fallback_strategy: 'never',
      retry_on_failure: true,
      max_retries: 3,
      retry_delay_seconds: 1,
    });
    const row = await waitForFinished(database.db, await runNow(database.db, queues, trigger));
    // A refused host is the trigger's mistake: never retried, never a request.
    expect(row).toMatchObject({ status: 'failed', retry_count: 0 });
    expect(row.error).toMatch(message);
    expect(hits.length).toBe(before);
  });
});

describe('the scheduler HTTP client, with loopback allowed', () => {
  const guard = new EgressGuard({ allowedHosts: ['127.0.0.1'], allowedCidrs: ['127.0.0.0/8'] });
  const client = new HttpHandlerClient({ egress: guard });
  afterAll(() => client.shutdown());

  it('should not follow a redirect, to a metadata address or anywhere else', async () => {
    const before = hits.length;
    for (const path of ['/redirect', '/redirect-local']) {
      const outcome = await client.call(
        { url: `http://127.0.0.1:${port}${path}`, timeoutMs: 2000 },
        job,
        inOneSecond(),
      );
      expect(outcome).toMatchObject({
        ok: false,
        kind: 'validation',
        message: expect.stringMatching(/redirects are not followed/),
      });
    }
    expect(hits.slice(before)).toEqual(['/redirect', '/redirect-local']);
  });

  it('should store an error body redacted and cut', async () => {
    const outcome = await client.call(
      { url: `http://127.0.0.1:${port}/leaky`, timeoutMs: 2000 },
      job,
      inOneSecond(),
    );
    expect(outcome.ok).toBe(false);
    const message = (outcome as { message: string }).message;
    expect(message).toMatch(/HTTP 500/);
    expect(message).not.toMatch(/sk-live-123456|hunter2|abcdefghijkl/);
    expect(message).toMatch(/\[redacted\]/);
    expect(message.length).toBeLessThan(400);
  });
});

describe("the executor's HTTP health checks", () => {
  const check = (path: string): HealthCheck =>
    ({
      name: 'up',
      type: 'http',
      url: `http://localhost:${port}${path}`,
      method: 'GET',
      timeout_ms: 2000,
      attempts: 1,
      interval_ms: 0,
    }) as HealthCheck;
  const noVerifications = { runVerification: async () => ({ ok: false, detail: 'none' }) };

  it('should refuse a name that resolves to loopback when loopback is not allowed, without a request', async () => {
    const checker = new HealthChecker({
      resetTimeoutMs: 1000,
      maxTimeoutMs: 5000,
      egress: new EgressGuard({ allowedHosts: ['localhost'], allowedCidrs: [] }),
    });
    const before = hits.length;
    const outcome = await checker.run(check('/ok'), noVerifications);
    checker.shutdown();
    expect(outcome).toMatchObject({ ok: false, detail: expect.stringMatching(/loopback address/) });
    expect(hits.length).toBe(before);
  });

  it('should pass a healthy allowed target, and fail a redirect without following it', async () => {
    const checker = new HealthChecker({
      resetTimeoutMs: 1000,
      maxTimeoutMs: 5000,
      egress: new EgressGuard({ allowedHosts: ['localhost'], allowedCidrs: ['127.0.0.0/8', '::1/128'] }),
    });
    expect(await checker.run(check('/ok'), noVerifications)).toMatchObject({ ok: true });
    const before = hits.length;
    const redirected = await checker.run(check('/redirect'), noVerifications);
    checker.shutdown();
    expect(redirected).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/HTTP 302.*redirects are not followed/),
    });
    expect(hits.slice(before)).toEqual(['/redirect']);
  });
});

describe('the guard on a name that resolves to several addresses (DNS rebinding)', () => {
  const lookupWith = (addresses: Array<{ address: string; family: number }>) =>
    new Promise<unknown>((resolve, reject) =>
      new EgressGuard({ allowedHosts: ['*'], allowedCidrs: [] }, async () => addresses).lookup(
        'rebind.example',
        { all: false },
        (error, address) => (error ? reject(error) : resolve(address)),
      ),
    );

  it('should refuse the connection when any address is refused, not pick the good one', async () => {
    await expect(
      lookupWith([
        { address: '93.184.216.34', family: 4 },
        { address: '169.254.169.254', family: 4 },
      ]),
    ).rejects.toBeInstanceOf(EgressRefusedError);
    await expect(lookupWith([{ address: '::ffff:a9fe:a9fe', family: 6 }])).rejects.toThrow(/metadata/);
  });

  it('should hand the checked address to the socket when all are allowed', async () => {
    await expect(lookupWith([{ address: '93.184.216.34', family: 4 }])).resolves.toBe('93.184.216.34');
  });
});
