/**
 * `warden notifications …` and `warden keys create-operator` (docs/notifications.md, docs/runbook.md): channels
 * managed from the command line through the API — secrets read from the environment, never printed — and a
 * platform operator's key that opens Bull Board where a tenant's admin key cannot.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOperatorKey, createProgram, describeError, exitCodeFor } from '@warden/cli';
import { call, startTestApi, type TestApi } from '../support/api.js';

const SECRET = 'cli-secret-0123456789abcdef0123456789';

describe('the notifications and operator-key commands', () => {
  let api: TestApi;
  let manager: string;

  beforeAll(async () => {
    api = await startTestApi();
    manager = await api.createKey('cli-acme', ['notifications:write'], 'ops@example.com');
  });
  afterAll(async () => {
    await api?.stop();
  });

  async function warden(args: string[], env: Record<string, string> = {}) {
    let out = '';
    let err = '';
    const program = createProgram({
      environment: { env: { WARDEN_API_URL: api.url, WARDEN_API_KEY: manager, ...env }, cwd: process.cwd() },
      io: { out: (text) => (out += text), err: (text) => (err += text) },
    });
    try {
      await program.parseAsync(['node', 'warden', ...args]);
      return { code: 0, out, err };
    } catch (error) {
      return { code: exitCodeFor(error), out, err: err + describeError(error) };
    }
  }

  it('should add a webhook channel from the environment and never print its secret', async () => {
    const added = await warden(['notifications', 'channels', 'add', 'ops-hook', '--kind', 'webhook'], {
      WARDEN_CHANNEL_URL: 'https://hooks.example.com/warden/abc123',
      WARDEN_CHANNEL_SIGNING_SECRET: SECRET,
    });
    expect(added.code).toBe(0);
    expect(added.out).toMatch(/added webhook channel ops-hook .* to hooks\.example\.com/);
    const list = await warden(['notifications', 'channels', 'list']);
    expect(list.out).toMatch(/ops-hook\s+webhook\s+on\s+hooks\.example\.com\s+all events/);
    for (const text of [added.out, list.out]) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain('abc123');
    }
  });

  it('should refuse a webhook without a signing secret, and an unknown event, as usage errors', async () => {
    const noSecret = await warden(['notifications', 'channels', 'add', 'x', '--kind', 'webhook'], {
      WARDEN_CHANNEL_URL: 'https://hooks.example.com/x',
    });
    expect(noSecret.code).toBe(2);
    expect(noSecret.err).toMatch(/WARDEN_CHANNEL_SIGNING_SECRET/);
    const badEvent = await warden(
      ['notifications', 'channels', 'add', 'y', '--kind', 'slack', '--events', 'gate.opened,everything'],
      { WARDEN_CHANNEL_URL: 'https://hooks.example.com/y' },
    );
    expect(badEvent.code).toBe(2);
    expect(badEvent.err).toMatch(/--events/);
  });

  it('should disable a channel, show the delivery log and remove the channel', async () => {
    const disabled = await warden(['notifications', 'channels', 'update', 'ops-hook', '--disable']);
    expect(disabled.code).toBe(0);
    expect(disabled.out).toMatch(/ops-hook\s+webhook\s+off/);
    const log = await warden(['notifications', 'deliveries', '--json']);
    expect(log.code).toBe(0);
    expect(JSON.parse(log.out)).toEqual({ items: [], next_cursor: null });
    expect((await warden(['notifications', 'channels', 'remove', 'ops-hook'])).code).toBe(0);
    const gone = await warden(['notifications', 'channels', 'remove', 'ops-hook']);
    expect(gone.code).toBe(1);
    expect(gone.err).toMatch(/404/);
  });

  it("should create an operator key that opens Bull Board where the tenant's admin key cannot", async () => {
    const created = await createOperatorKey({ databaseUrl: api.database.url, owner: 'ops@example.com' });
    const basic = (key: string) => ({ authorization: `Basic ${Buffer.from(`x:${key}`).toString('base64')}` });
    expect((await call(`${api.url}/admin/queues/api/queues`, { headers: basic(created.key) })).status).toBe(
      200,
    );
    const admin = await api.createKey('cli-acme', ['admin']);
    expect((await call(`${api.url}/admin/queues/api/queues`, { headers: basic(admin) })).status).toBe(403);
    // The operator key is nobody's tenant key: the tenant API does not know it.
    expect((await call(`${api.url}/v1/notification-channels`, { key: created.key })).status).toBe(401);
  });

  it('should refuse platform:operate on a tenant key at creation', async () => {
    const res = await warden(
      ['keys', 'create', '--tenant', 'cli-acme', '--scopes', 'admin,platform:operate', '--owner', 'x'],
      {
        DATABASE_URL: api.database.url,
      },
    );
    expect(res.code).toBe(2);
    expect(res.err).toMatch(/platform operator's key.*create-operator/);
  });
});
