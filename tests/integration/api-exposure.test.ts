/**
 * What the API lets out: request metrics labelled by the matched route template, errors included (docs/runbook.md, the per-route
 * error rate): a 4xx answered by the error handler keeps its route's `/v1/...` template, and paths nobody
 * declared collapse into bounded labels whatever a client sends; and secret-named fields of task metadata are
 * redacted in answers as in log lines.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, event, startTestApi, type TestApi } from '../support/api.js';
import { startTestSupervisor } from '../support/supervisor.js';

let api: TestApi;
let key: string;

beforeAll(async () => {
  api = await startTestApi();
  key = await api.createKey('metrics-acme', ['events:write', 'tasks:read']);
});
afterAll(async () => api?.stop());

/** The `route` label of every `http_request_duration_seconds_count` series with this method and status. */
async function routesWith(method: string, status: number): Promise<string[]> {
  const text = (await call(`${api.url}/metrics`)).body as string;
  const pattern = /^http_request_duration_seconds_count\{([^}]*)\}/gm;
  const routes: string[] = [];
  for (const [, labels] of text.matchAll(pattern)) {
    const get = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(labels!)?.[1];
    if (get('method') === method && get('status') === String(status)) routes.push(get('route')!);
  }
  return routes;
}

describe('the route label of request metrics', () => {
  it('should name the route template of a 404 for an unknown task and of a 400 for a bad body', async () => {
    expect((await call(`${api.url}/v1/tasks/no-such-task`, { key })).status).toBe(404);
    expect((await call(`${api.url}/v1/events`, { key, body: { event_type: 42 } })).status).toBe(400);
    expect(await routesWith('GET', 404)).toContain('/v1/tasks/:id');
    expect(await routesWith('POST', 400)).toContain('/v1/events');
  });

  it('should name the route of a 401 and a 403 too', async () => {
    expect((await call(`${api.url}/v1/tasks/t1`)).status).toBe(401);
    expect((await call(`${api.url}/v1/changesets`, { key })).status).toBe(403);
    expect(await routesWith('GET', 401)).toContain('/v1/tasks/:id');
    expect(await routesWith('GET', 403)).toContain('/v1/changesets');
  });

  it('should keep labels bounded for paths that match nothing', async () => {
    for (const path of ['/v1/nope', '/v1/nope/deeper', '/random/' + 'x'.repeat(50), '/v1/tasks/a/b/c/d'])
      expect((await call(`${api.url}${path}`, { key })).status).toBe(404);
    const labels = await routesWith('GET', 404);
    expect(labels.filter((l) => l.includes('nope') || l.includes('random') || l.includes('/a/b'))).toEqual(
      [],
    );
    expect(labels).toContain('unmatched');
  });
});

describe('secrets an agent put in task metadata', () => {
  it('should not be echoed by GET /v1/tasks/:id, while the rest of the metadata is', async () => {
    const supervisor = await startTestSupervisor({ databaseUrl: api.database.url, prefix: api.prefix });
    try {
      const reader = await api.createKey('metrics-acme', ['tasks:read']);
      const sent = await call(`${api.url}/v1/events`, {
        key,
        body: event('secret-meta-1', {
          task_id: 'secret-task',
          event_type: 'TASK_CREATED',
          payload: {
            metadata: {
              region: 'eu',
              api_token: 'sk-live-should-not-leak',
              upstream: { password: 'hunter2', host: 'db.internal' },
            },
          },
        }),
      });
      expect(sent.status).toBe(202);
      let task: { status: number; body: any } = { status: 0, body: undefined };
      for (let i = 0; i < 100 && task.status !== 200; i++) {
        task = await call(`${api.url}/v1/tasks/secret-task`, { key: reader });
        if (task.status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(task.status).toBe(200);
      expect(task.body.metadata).toMatchObject({
        region: 'eu',
        api_token: '[redacted]',
        upstream: { password: '[redacted]', host: 'db.internal' },
      });
      expect(JSON.stringify(task.body)).not.toMatch(/sk-live-should-not-leak|hunter2/);
    } finally {
      await supervisor.stop();
    }
  });
});
