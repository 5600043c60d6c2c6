/**
 * Verifications and health checks (docs/executor.md, step 6): the policy's named verifications run without a
 * shell, with a timeout that kills them and a clean environment; HTTP health checks go through an opossum circuit
 * breaker. Any failure rolls the change set back. (The sandbox itself: executor-sandbox.test.ts.)
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestApi, type TestApi } from '../support/api.js';
import {
  change,
  startTestExecutor,
  testPolicyFile,
  submission,
  tempWorkspace,
  waitForChangeSet,
  type TempWorkspace,
  type TestExecutor,
} from '../support/executor.js';

const TENANT = 'checks';

describe('verification and health checks', () => {
  let api: TestApi;
  let executor: TestExecutor;
  let ws: TempWorkspace;
  let writer: string;
  let service: Server;
  let serviceUrl: string;
  let healthy = true;
  let hits = 0;

  beforeAll(async () => {
    service = createServer((req, res) => {
      hits += 1;
      res.writeHead(healthy ? 200 : 503).end(healthy ? 'ok' : 'down');
    });
    await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
    serviceUrl = `http://127.0.0.1:${(service.address() as AddressInfo).port}/healthz`;
    const policyFile = await testPolicyFile({
      'env-clean': {
        command: [
          'node',
          '-e',
          'process.exit(process.env.DATABASE_URL || process.env.REDIS_URL ? 1 : (process.env.WARDEN_CHANGESET_ID === "env-clean" ? 0 : 2))',
        ],
      },
    });
    api = await startTestApi({ WRITEGATE_POLICY_FILE: policyFile });
    ws = await tempWorkspace({ 'docs/page.md': 'v1\n' });
    executor = await startTestExecutor({
      databaseUrl: api.database.url,
      prefix: api.prefix,
      workspaces: { app: ws.root },
      env: { EXECUTOR_BREAKER_RESET_MS: '60000', WRITEGATE_POLICY_FILE: policyFile },
    });
    writer = await api.createKey(TENANT, ['changesets:write']);
  });

  afterAll(async () => {
    await executor?.stop();
    await api?.stop();
    await ws?.remove();
    await new Promise((resolve) => service?.close(resolve));
  });

  async function runWith(id: string, plan: Record<string, unknown>) {
    const before = await ws.read('docs/page.md');
    const response = await call(`${api.url}/v1/changesets`, {
      key: writer,
      body: submission({
        changesetId: id,
        workspace: 'app',
        changes: [change.update('docs/page.md', before, `${id}\n`)],
        plan,
      }),
    });
    expect(response.body.verdict?.verdict, JSON.stringify(response.body)).toBe('ALLOW');
    const row = await waitForChangeSet(api.db, TENANT, id, [
      'completed',
      'rolled_back',
      'rollback_failed',
      'failed',
    ]);
    const view = await call(`${api.url}/v1/changesets/${id}`, { key: writer });
    return { row, view: view.body, content: await ws.read('docs/page.md'), before };
  }

  it('should complete when every verification and health check passes', async () => {
    const { row, view, content } = await runWith('all-pass', {
      verification_plan: { verifications: ['pass'] },
      health_checks: [
        { type: 'http', name: 'service', url: serviceUrl },
        { type: 'verification', name: 'cmd', verification: 'pass' },
      ],
    });
    expect(row.status).toBe('completed');
    expect(content).toBe('all-pass\n');
    expect(
      view.execution.result.checks.map((c: { name: string; ok: boolean; detail: string }) => [
        c.name,
        c.ok,
        c.detail,
      ]),
    ).toEqual([
      ['pass', true, expect.stringMatching(/^exit 0/)],
      ['service', true, 'HTTP 200'],
      ['cmd', true, expect.stringMatching(/^exit 0/)],
    ]);
  });

  it('should kill a verification at its timeout and roll back', async () => {
    const { row, view, content, before } = await runWith('too-slow', {
      verification_plan: { verifications: ['too-slow'] },
    });
    expect(row.status).toBe('rolled_back');
    expect(content).toBe(before);
    expect(view.execution.error.message).toContain('timed out after 500 ms');
  });

  it("should not pass the executor's own environment (database credentials) to verifications", async () => {
    const { row } = await runWith('env-clean', { verification_plan: { verifications: ['env-clean'] } });
    expect(row.status, row.error_message ?? '').toBe('completed');
  });

  it('should roll back when an HTTP health check fails, then fail fast once the circuit opens', async () => {
    healthy = false;
    const messages: string[] = [];
    // The breaker opens once half of at least three calls failed; until then each failure calls the service.
    for (let i = 0; i < 5 && !messages.some((m) => m.includes('circuit open')); i++) {
      const hitsBefore = hits;
      const { row, view, content, before } = await runWith(`http-down-${i}`, {
        health_checks: [{ type: 'http', name: 'service', url: serviceUrl, timeout_ms: 2000 }],
      });
      expect(row.status).toBe('rolled_back');
      expect(content).toBe(before);
      messages.push(view.execution.error.message);
      if (view.execution.error.message.includes('circuit open'))
        expect(hits, 'an open circuit does not call the service').toBe(hitsBefore);
    }
    expect(messages[0]).toContain('HTTP 503 (expected 2xx)');
    expect(messages.at(-1)).toContain('circuit open');
    healthy = true;
  });
});
