/**
 * Traces (docs/observability.md#traces): with the `OTEL_*` variables pointing at a collector, one trace runs from
 * `POST /v1/events` through the queue to the supervisor's decision transaction, from a cron fire through its run
 * to the handler call, and from a change set's submission to its execution steps. The collector is a plain HTTP
 * server in this process receiving what the services export (OTLP/HTTP, JSON bodies).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TriggerWorker } from '@warden/client';
import { createLogger, startTracing, withSpan, type Tracing } from '@warden/observability';
import { createSupervisorService, loadConfig, type SupervisorService } from '@warden/supervisor-worker';
import { testServers, waitFor } from '@warden/testing';
import { call, event, startTestApi, type TestApi } from '../support/api.js';
import {
  change,
  startTestExecutor,
  submission,
  tempWorkspace,
  waitForChangeSet,
  type TempWorkspace,
  type TestExecutor,
} from '../support/executor.js';
import {
  registerTestTrigger,
  runNow,
  startHandler,
  startTestScheduler,
  testQueues,
  waitForFinished,
  type TestScheduler,
} from '../support/scheduler.js';
import { POLICY_FILE } from '../support/supervisor.js';

/** A span as the collector received it (OTLP JSON: ids in hex, attributes as typed values). */
interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  links: Array<{ traceId: string; spanId: string }>;
  service: string;
}

const SPAN_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 };
const TENANT = 'traced';

type OtlpValue = {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
  arrayValue?: { values?: OtlpValue[] };
};

function valueOf(value: OtlpValue): unknown {
  if (value.arrayValue) return (value.arrayValue.values ?? []).map(valueOf);
  if (value.intValue !== undefined) return Number(value.intValue);
  return value.stringValue ?? value.boolValue ?? value.doubleValue;
}

function attributesOf(list: Array<{ key: string; value: OtlpValue }> | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map(({ key, value }) => [key, valueOf(value)]));
}

/** An OTLP/HTTP collector: accepts `POST /v1/traces` with a JSON body and keeps every span. */
async function startCollector(): Promise<{ url: string; spans: ReceivedSpan[]; server: Server }> {
  const spans: ReceivedSpan[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      if (
        req.method !== 'POST' ||
        req.url !== '/v1/traces' ||
        !/json/.test(req.headers['content-type'] ?? '')
      ) {
        res.writeHead(415).end();
        return;
      }
      const request = JSON.parse(body) as {
        resourceSpans: Array<{
          resource: { attributes: Array<{ key: string; value: OtlpValue }> };
          scopeSpans: Array<{ spans: Array<Record<string, any>> }>;
        }>;
      };
      for (const resourceSpans of request.resourceSpans) {
        const service = String(attributesOf(resourceSpans.resource.attributes)['service.name']);
        for (const scope of resourceSpans.scopeSpans)
          for (const span of scope.spans)
            spans.push({
              traceId: span.traceId,
              spanId: span.spanId,
              ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
              name: span.name,
              kind: span.kind,
              attributes: attributesOf(span.attributes),
              links: (span.links ?? []).map((l: { traceId: string; spanId: string }) => ({
                traceId: l.traceId,
                spanId: l.spanId,
              })),
              service,
            });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, server };
}

let collector: Awaited<ReturnType<typeof startCollector>>;
let tracing: Tracing;
let api: TestApi;
let supervisor: SupervisorService;
const supervisorLines: Array<Record<string, unknown>> = [];

/** Waits until the collector holds a span matching `match` (flushing the batch processor while waiting). */
function waitForSpan(what: string, match: (span: ReceivedSpan) => boolean): Promise<ReceivedSpan> {
  return waitFor(
    `a span: ${what}`,
    async () => {
      await tracing.flush();
      return collector.spans.find(match);
    },
    { timeoutMs: 20_000, intervalMs: 100 },
  );
}

/** The parent of `span`, once exported (a parent ends, and leaves, after its children). */
const parentOf = (span: ReceivedSpan) =>
  waitForSpan(
    `the parent of ${span.name}`,
    (candidate) => candidate.traceId === span.traceId && candidate.spanId === span.parentSpanId,
  );

beforeAll(async () => {
  collector = await startCollector();
  // What `runMain` does in a service: tracing first, so the queues and workers created next carry it.
  const started = await startTracing({
    service: 'tracing-test',
    env: {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_SERVICE_NAME: 'warden-tracing-test',
    },
  });
  if (!started) throw new Error('tracing did not start');
  tracing = started;
  api = await startTestApi();
  supervisor = createSupervisorService(
    loadConfig({
      DATABASE_URL: api.database.url,
      REDIS_URL: testServers.redisUrl,
      QUEUE_PREFIX: api.prefix,
      OPS_PORT: '0',
      LOG_LEVEL: 'info',
      SUPERVISOR_POLICY_FILE: POLICY_FILE,
      POLL_INTERVAL_MS: '3600000',
      DB_POOL_SIZE: '4',
    }),
    {
      logger: createLogger({
        service: 'supervisor-worker',
        destination: { write: (line: string) => void supervisorLines.push(JSON.parse(line)) },
      }),
    },
  );
  await supervisor.start();
});

afterAll(async () => {
  await supervisor?.stop();
  await api?.stop();
  await tracing?.shutdown();
  collector?.server.closeAllConnections();
  await new Promise((resolve) => collector?.server.close(resolve));
});

describe('when an event is posted', () => {
  it('should trace the request, the enqueue, the job and the decision transaction with its audit rows, in one trace', async () => {
    const key = await api.createKey(TENANT, ['events:write', 'tasks:read']);
    const posted = await call(`${api.url}/v1/events`, {
      key,
      body: event('evt-traced', {
        task_id: 'task-traced',
        payload: {
          agent_spec: { name: 'installer', capabilities: ['shell'] },
          command_spec: { name: 'install', command: 'sudo', args: ['apt-get', 'install', 'jq'] },
        },
      }),
    });
    expect(posted.status).toBe(202);

    const decide = await waitForSpan('supervisor.decide of evt-traced', (span) =>
      ((span.attributes['warden.event_ids'] as string[] | undefined) ?? []).includes('evt-traced'),
    );
    expect(decide.name).toBe('supervisor.decide');
    const [audit] = await api.db
      .selectFrom('task_audits')
      .select(['audit_id', 'decision_id', 'event_type'])
      .where('tenant_id', '=', TENANT)
      .where('event_id', '=', 'evt-traced')
      .execute();
    expect(audit?.event_type).toBe('SUPERVISOR_BLOCKED');
    expect(decide.attributes).toMatchObject({
      'warden.decision_ids': [audit!.decision_id],
      'warden.decision_types': ['BLOCK'],
      'warden.audit_ids': [String(audit!.audit_id)],
      'warden.tenant_ids': [TENANT],
    });

    // decision transaction → consumer span of the job → producer span of the enqueue → the request's span.
    const consumer = await parentOf(decide);
    expect(consumer).toMatchObject({ name: 'process supervisor-events', kind: SPAN_KIND.CONSUMER });
    const producer = await waitForSpan('the enqueue', (span) => span.spanId === consumer.parentSpanId);
    // One job is added with `add` (span `add <queue>.<job name>`; several with `addBulk <queue>`).
    expect(producer).toMatchObject({ name: 'add supervisor-events.event', kind: SPAN_KIND.PRODUCER });
    const request = await waitForSpan('the request', (span) => span.spanId === producer.parentSpanId);
    expect(request).toMatchObject({
      name: 'POST /v1/events',
      kind: SPAN_KIND.SERVER,
      service: 'warden-tracing-test',
      attributes: { 'http.route': '/v1/events', 'http.response.status_code': 202 },
    });
    expect(request.parentSpanId).toBeUndefined();
    for (const span of [consumer, producer]) expect(span.traceId).toBe(decide.traceId);

    // The event's trace_id is the W3C trace id: the inbox row and the decision's log line point at the trace.
    const inbox = await api.db
      .selectFrom('supervisor_inbox')
      .select('trace_id')
      .where('tenant_id', '=', TENANT)
      .where('event_id', '=', 'evt-traced')
      .executeTakeFirstOrThrow();
    expect(inbox.trace_id).toBe(decide.traceId);
    const line = supervisorLines.find((l) => l.action === 'decide' && l.event_id === 'evt-traced');
    expect(line).toMatchObject({ trace_id: decide.traceId, span_id: consumer.spanId });
  });

  it("should continue the caller's trace when the request carries a traceparent", async () => {
    const key = await api.createKey(TENANT, ['events:write']);
    const callerTrace = 'ab'.repeat(16);
    const callerSpan = 'cd'.repeat(8);
    const posted = await call(`${api.url}/v1/events`, {
      key,
      headers: { traceparent: `00-${callerTrace}-${callerSpan}-01` },
      body: event('evt-caller', { task_id: 'task-caller' }),
    });
    expect(posted.status).toBe(202);
    const request = await waitForSpan(
      'the request under the caller',
      (span) => span.traceId === callerTrace && span.kind === SPAN_KIND.SERVER,
    );
    expect(request).toMatchObject({ name: 'POST /v1/events', parentSpanId: callerSpan });
    const decide = await waitForSpan('the decision under the caller', (span) =>
      ((span.attributes['warden.event_ids'] as string[] | undefined) ?? []).includes('evt-caller'),
    );
    expect(decide.traceId).toBe(callerTrace);
  });
});

describe('when a cron trigger fires', () => {
  let scheduler: TestScheduler;
  let queues: ReturnType<typeof testQueues>;
  let handler: TriggerWorker;

  beforeAll(async () => {
    queues = testQueues(api.prefix);
    scheduler = await startTestScheduler({ databaseUrl: api.database.url, prefix: api.prefix });
    handler = startHandler(api.prefix, TENANT, 'agent', async () => ({ output: { ok: true } }));
  });
  afterAll(async () => {
    await handler?.close();
    await scheduler?.stop();
    await queues?.disconnect();
  });

  it('should trace the fire job, the governing transaction that starts the run, and the handler call', async () => {
    const trigger = await registerTestTrigger(api.db, queues, TENANT, {
      event_name: 'nightly-traced',
      expression: '0 0 1 1 *',
      agent: { queue: 'agent' },
    });
    // The fire's origin (a manual run here; the job scheduler for a cron time) as a span of the test's own.
    const executionId = await withSpan('test.run-now', {}, () => runNow(api.db, queues, trigger));
    expect((await waitForFinished(api.db, executionId)).status).toBe('success');

    const govern = await waitForSpan(
      'scheduler.govern_fires of the run',
      (span) =>
        span.name === 'scheduler.govern_fires' &&
        ((span.attributes['warden.execution_ids'] as string[] | undefined) ?? []).includes(executionId),
    );
    expect(govern.attributes['warden.fire_outcomes']).toEqual(['started']);
    const [attempt] = await api.db
      .selectFrom('cron_execution_attempts')
      .select('attempt_id')
      .where('execution_id', '=', executionId)
      .execute();
    expect(govern.attributes['warden.attempt_ids']).toEqual([attempt!.attempt_id]);

    const consumer = await parentOf(govern);
    expect(consumer).toMatchObject({ name: 'process cron-fires', kind: SPAN_KIND.CONSUMER });
    const producer = await waitForSpan('the fire enqueue', (span) => span.spanId === consumer.parentSpanId);
    expect(producer).toMatchObject({ name: 'add cron-fires.fire', kind: SPAN_KIND.PRODUCER });
    expect(await parentOf(producer)).toMatchObject({ name: 'test.run-now' });

    const calls = await waitForSpan(
      'the handler call',
      (span) =>
        ((span.attributes['warden.attempt_ids'] as string[] | undefined) ?? []).includes(
          attempt!.attempt_id,
        ) && span.name === 'scheduler.handler_calls',
    );
    expect(calls.parentSpanId).toBe(govern.spanId);
    const handlerJob = await waitForSpan('the handler job', (span) => span.parentSpanId === calls.spanId);
    expect(handlerJob).toMatchObject({ kind: SPAN_KIND.PRODUCER, traceId: govern.traceId });
    expect(handlerJob.name).toMatch(/^(add|addBulk) cron-handler/);
  });
});

describe('when a change set is submitted', () => {
  let executor: TestExecutor;
  let ws: TempWorkspace;

  beforeAll(async () => {
    ws = await tempWorkspace({ 'docs/traced.md': 'v1\n' });
    executor = await startTestExecutor({
      databaseUrl: api.database.url,
      prefix: api.prefix,
      workspaces: { app: ws.root },
    });
  });
  afterAll(async () => {
    await executor?.stop();
    await ws?.remove();
  });

  it('should trace the submission, the job and each execution step, in one trace', async () => {
    const key = await api.createKey(TENANT, ['changesets:write']);
    const submitted = await call(`${api.url}/v1/changesets`, {
      key,
      body: submission({
        changesetId: 'cs-traced',
        workspace: 'app',
        changes: [change.update('docs/traced.md', 'v1\n', 'v2\n')],
      }),
    });
    expect(submitted.status).toBe(201);
    expect((await waitForChangeSet(api.db, TENANT, 'cs-traced', ['completed'])).status).toBe('completed');

    const execute = await waitForSpan(
      'executor.execute of cs-traced',
      (span) => span.name === 'executor.execute' && span.attributes['warden.changeset_id'] === 'cs-traced',
    );
    expect(execute.attributes).toMatchObject({
      'warden.outcome': 'done',
      'warden.changeset_status': 'completed',
    });
    const consumer = await parentOf(execute);
    expect(consumer).toMatchObject({ name: 'process changesets', kind: SPAN_KIND.CONSUMER });
    const producer = await waitForSpan(
      'the change set enqueue',
      (span) => span.spanId === consumer.parentSpanId,
    );
    expect(producer.kind).toBe(SPAN_KIND.PRODUCER);
    const request = await waitForSpan('the submission', (span) => span.spanId === producer.parentSpanId);
    expect(request).toMatchObject({ name: 'POST /v1/changesets', kind: SPAN_KIND.SERVER });

    await waitForSpan(
      'the last step',
      (span) => span.name === 'executor.completed' && span.traceId === execute.traceId,
    );
    const steps = collector.spans
      .filter((span) => span.parentSpanId === execute.spanId)
      .map((span) => span.name);
    expect(steps).toEqual(
      expect.arrayContaining([
        'executor.idempotency',
        'executor.locked',
        'executor.validating',
        'executor.backing_up',
        'executor.applying',
        'executor.verifying',
        'executor.completed',
      ]),
    );
  });
});
