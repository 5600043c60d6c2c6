/**
 * The console over plain HTTP against the real API (Postgres, Redis): sign-in and its refusals, the session
 * cookie, CSRF and same-origin checks, tenancy, scopes (the API's own routes decide), and hostile input — a 4xx
 * naming the problem, never a 5xx. The browser suite (tests/e2e/console.test.ts) covers the pages in Chromium.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestApi, type TestApi } from '../support/api.js';
import { change, submission } from '../support/executor.js';
import { createTestProcessor, taskEvent } from '../support/supervisor.js';

const ACME = 'console-acme';
const GLOBEX = 'console-globex';
const XSS = `<script>alert(1)</script>`;
let api: TestApi;
let person: string;
let reader: string;
let agent: string;
let outsider: string;

interface Session {
  cookie: string;
  csrf: string;
}

/** Signs in as a browser would: the sign-in page's token and pre-session cookie, then the form. */
async function signIn(key: string, headers: Record<string, string> = {}) {
  const page = await fetch(`${api.url}/console/sign-in`);
  const pre = page.headers
    .getSetCookie()
    .find((c) => c.startsWith('warden_console_pre='))!
    .split(';')[0]!;
  const token = /name="_csrf" value="([^"]+)"/.exec(await page.text())![1]!;
  return fetch(`${api.url}/console/sign-in`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: pre,
      accept: 'text/html',
      ...headers,
    },
    body: new URLSearchParams({ _csrf: token, api_key: key }).toString(),
  });
}

async function session(key: string): Promise<Session> {
  const res = await signIn(key);
  expect(res.status).toBe(303);
  const cookie = res.headers
    .getSetCookie()
    .find((c) => c.startsWith('warden_console='))!
    .split(';')[0]!;
  const inbox = await fetch(`${api.url}/console/inbox`, { headers: { cookie, accept: 'text/html' } });
  const csrf = /<meta name="csrf-token" content="([^"]+)"/.exec(await inbox.text())![1]!;
  return { cookie, csrf };
}

function post(
  s: Session | undefined,
  path: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
) {
  return fetch(`${api.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
      ...(s ? { cookie: s.cookie } : {}),
      ...headers,
    },
    body: new URLSearchParams(form).toString(),
  });
}

/** The API's error shape, `{ error: { code, message, details } }`. */
const errorOf = async (res: Response) =>
  ((await res.json()) as { error: { code: string; message: string; details: Array<{ path: string }> } })
    .error;

const get = (s: Session | undefined, path: string, accept = 'text/html') =>
  fetch(`${api.url}${path}`, { redirect: 'manual', headers: { accept, ...(s ? { cookie: s.cookie } : {}) } });

async function pause(tenant: string, taskId: string) {
  const processor = await createTestProcessor(api.db);
  await processor.processEvents([
    taskEvent(tenant, `${taskId}-c`, { task_id: taskId, event_type: 'TASK_CREATED' }),
    taskEvent(tenant, `${taskId}-s`, {
      task_id: taskId,
      event_type: 'TASK_STEP_COMPLETED',
      payload: { risk_indicators: { error_rate: 0.9, resource_usage: 0.95 } },
    }),
  ]);
}

async function task(key: string, id: string) {
  return (await call(`${api.url}/v1/tasks/${encodeURIComponent(id)}`, { key })).body;
}

beforeAll(async () => {
  api = await startTestApi();
  person = await api.createKey(ACME, ['tasks:read', 'tasks:approve'], 'Pat Person');
  reader = await api.createKey(ACME, ['tasks:read'], 'Rita Reader');
  agent = await api.createKey(ACME, ['events:write', 'tasks:read'], 'agent');
  outsider = await api.createKey(GLOBEX, ['tasks:read', 'tasks:approve'], 'Olga Outsider');
  await pause(ACME, `acme-${XSS}`);
  await pause(ACME, 'acme-2');
  await pause(GLOBEX, 'globex-1');
});
afterAll(async () => {
  await api?.stop();
});

describe('sign-in', () => {
  it("should refuse an agent's key (events:write) and set no session", async () => {
    const res = await signIn(agent);
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('agent keys cannot sign in');
    expect(res.headers.getSetCookie().some((c) => c.startsWith('warden_console='))).toBe(false);
  });

  it('should refuse a wrong key with 401 and an empty one with 400', async () => {
    expect((await signIn('wdn_not-a-key')).status).toBe(401);
    expect((await signIn('')).status).toBe(400);
  });

  it('should refuse a sign-in without the form token, or from another origin', async () => {
    const bare = await post(undefined, '/console/sign-in', { api_key: person });
    expect(bare.status).toBe(403);
    expect((await errorOf(bare)).code).toBe('forbidden');
    expect((await signIn(person, { origin: 'https://evil.example' })).status).toBe(403);
  });

  it('should set an HTTP-only, SameSite=Strict session cookie scoped to /console, with an expiry', async () => {
    const res = await signIn(person);
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('warden_console='))!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).toMatch(/Path=\/console/);
    expect(cookie).toMatch(/Max-Age=\d+/);
    expect(cookie).not.toContain(person);
  });

  it('should answer pages without a session with a redirect, and other requests with 401 in the error shape', async () => {
    const page = await get(undefined, '/console/inbox');
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/console/sign-in');
    const json = await get(undefined, '/console/inbox/items', 'application/json');
    expect(json.status).toBe(401);
    expect((await errorOf(json)).code).toBe('unauthorized');
    const forged = await get(
      { cookie: 'warden_console=e30.AAAA', csrf: '' },
      '/console/inbox',
      'application/json',
    );
    expect(forged.status).toBe(401);
  });
});

describe('a signed-in person', () => {
  let s: Session;
  beforeAll(async () => {
    s = await session(person);
  });

  it("should see the tenant's gates only, hostile ids escaped, with a strict CSP", async () => {
    const res = await get(s, '/console/inbox');
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    const body = await res.text();
    expect(body).toContain('acme-2');
    expect(body).toContain('acme-&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(body).not.toContain(XSS);
    expect(body).not.toContain('globex-1');
  });

  it("should get 404 for another tenant's task, as the API answers", async () => {
    const res = await get(s, '/console/tasks/globex-1');
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('not found');
  });

  it('should refuse an act without the CSRF token, with a wrong one, or from another origin', async () => {
    const gate = (await task(person, 'acme-2')).open_gates[0].gate_id as string;
    const path = `/console/tasks/acme-2/gates/${gate}/release`;
    expect((await post(s, path, { reason: 'ok' })).status).toBe(403);
    expect((await post(s, path, { reason: 'ok', _csrf: 'x'.repeat(43) })).status).toBe(403);
    expect(
      (await post(s, path, { reason: 'ok', _csrf: s.csrf }, { origin: 'https://evil.example' })).status,
    ).toBe(403);
    expect((await task(person, 'acme-2')).status).toBe('paused');
  });

  it('should refuse a release without a reason, or with a NUL in it, with 400 naming the field', async () => {
    const gate = (await task(person, 'acme-2')).open_gates[0].gate_id as string;
    const path = `/console/tasks/acme-2/gates/${gate}/release`;
    const empty = await post(s, path, { reason: '  ', _csrf: s.csrf });
    expect(empty.status).toBe(400);
    expect((await errorOf(empty)).details[0]?.path).toBe('reason');
    const nul = await post(s, path, { reason: 'a\u0000b', _csrf: s.csrf });
    expect(nul.status).toBe(400);
    expect((await task(person, 'acme-2')).status).toBe('paused');
  });

  it('should answer hostile path segments and bodies with a 4xx, never a 5xx', async () => {
    for (const segment of ['%00', '%ZZ', '%ED%A0%80', 'a'.repeat(300), encodeURIComponent(XSS)]) {
      const page = await get(s, `/console/tasks/${segment}`);
      expect(page.status, segment).toBeGreaterThanOrEqual(400);
      expect(page.status, segment).toBeLessThan(500);
      const act = await post(s, `/console/tasks/${segment}/unblock`, { reason: 'x', _csrf: s.csrf });
      expect(act.status, segment).toBeGreaterThanOrEqual(400);
      expect(act.status, segment).toBeLessThan(500);
    }
    const huge = await post(s, '/console/tasks/acme-2/unblock', {
      reason: 'x'.repeat(100_000),
      _csrf: s.csrf,
    });
    expect(huge.status).toBe(413);
    const gate = (await task(person, 'acme-2')).open_gates[0].gate_id as string;
    const unknownGate = await post(s, `/console/tasks/acme-2/gates/${gate}x/release`, {
      reason: 'x',
      _csrf: s.csrf,
    });
    expect(unknownGate.status).toBe(404);
    expect((await get(s, '/console/assets/..%2f..%2fpackage.json', 'application/json')).status).toBe(404);
  });

  it('should release through the API route: GATE_RELEASED audited with the owner and the reason', async () => {
    const gate = (await task(person, 'acme-2')).open_gates[0].gate_id as string;
    const res = await post(s, `/console/tasks/acme-2/gates/${gate}/release`, {
      reason: `seen ${XSS}`,
      _csrf: s.csrf,
    });
    expect(res.status).toBe(303);
    expect((await task(person, 'acme-2')).status).toBe('running');
    const audits = await call(`${api.url}/v1/tasks/acme-2/audits`, { key: person });
    const release = audits.body.items.find((a: { event_type: string }) => a.event_type === 'GATE_RELEASED');
    expect(release.payload).toMatchObject({ released_by_owner: 'Pat Person', note: `seen ${XSS}` });
  });
});

describe('a change set in the console', () => {
  it('should bind the approval to the checksum shown and ask a reason', async () => {
    const submitter = await api.createKey(ACME, ['changesets:write'], 'agent');
    const approver = await api.createKey(ACME, ['changesets:approve'], 'Ann Approver');
    const body = submission({
      changesetId: 'cs-http-1',
      workspace: 'default',
      changes: [change.create('docs/cs-http-1.schema.json', `${XSS}\n`)],
    });
    const submitted = await call(`${api.url}/v1/changesets`, { key: submitter, body });
    expect(submitted.status).toBe(201);
    expect(submitted.body.verdict.verdict).toBe('NEED_APPROVAL');
    const s = await session(approver);
    const page = await (await get(s, '/console/changesets/cs-http-1')).text();
    expect(page).toContain(`name="checksum" value="${submitted.body.checksum}"`);
    expect(page).not.toContain(XSS);

    const path = '/console/changesets/cs-http-1/approve';
    const stale = await post(s, path, { checksum: 'f'.repeat(64), reason: 'ok', _csrf: s.csrf });
    expect(stale.status).toBe(400);
    expect((await errorOf(stale)).code).toBe('checksum_mismatch');
    expect((await post(s, path, { reason: 'ok', _csrf: s.csrf })).status).toBe(400);
    expect((await post(s, path, { checksum: submitted.body.checksum, _csrf: s.csrf })).status).toBe(400);
    const view = await call(`${api.url}/v1/changesets/cs-http-1`, { key: approver });
    expect(view.body.approval.state).toBe('pending');

    const approved = await post(s, path, {
      checksum: submitted.body.checksum,
      reason: 'read it',
      _csrf: s.csrf,
    });
    expect(approved.status).toBe(303);
    const after = await call(`${api.url}/v1/changesets/cs-http-1`, { key: approver });
    expect(after.body.approval).toMatchObject({
      state: 'approved',
      checksum: submitted.body.checksum,
      note: 'read it',
    });
  });
});

describe('scopes and tenancy are the API routes’', () => {
  it('should refuse a release by a key without tasks:approve (403), leaving the gate open', async () => {
    const s = await session(reader);
    const id = `acme-${XSS}`;
    const gate = (await task(person, id)).open_gates[0].gate_id as string;
    const res = await post(s, `/console/tasks/${encodeURIComponent(id)}/gates/${gate}/release`, {
      reason: 'ok',
      _csrf: s.csrf,
    });
    expect(res.status).toBe(403);
    expect((await errorOf(res)).message).toContain('tasks:approve');
    expect((await task(person, id)).status).toBe('paused');
  });

  it("should refuse to release another tenant's gate (404)", async () => {
    const s = await session(outsider);
    const id = `acme-${XSS}`;
    const gate = (await task(person, id)).open_gates[0].gate_id as string;
    const res = await post(s, `/console/tasks/${encodeURIComponent(id)}/gates/${gate}/release`, {
      reason: 'ok',
      _csrf: s.csrf,
    });
    expect(res.status).toBe(404);
    expect((await task(person, id)).status).toBe('paused');
  });

  it('should end the session when its key gains events:write', async () => {
    const key = await api.createKey(ACME, ['tasks:read'], 'Turncoat');
    const s = await session(key);
    expect((await get(s, '/console/inbox')).status).toBe(200);
    await api.db
      .updateTable('api_keys')
      .set({ scopes: ['tasks:read', 'events:write'] })
      .where('owner', '=', 'Turncoat')
      .execute();
    expect((await get(s, '/console/inbox')).status).toBe(303);
  });
});

describe('gates denied and notifications, from the console', () => {
  it('should deny a gate with a reason: the task is blocked and the audit names the person', async () => {
    const id = 'acme-deny';
    await pause(ACME, id);
    const s = await session(person);
    const gate = (await task(person, id)).open_gates[0].gate_id as string;
    const page = await (await get(s, `/console/tasks/${id}`)).text();
    expect(page).toContain(`/gates/${gate}/deny`);
    const denied = await post(s, `/console/tasks/${id}/gates/${gate}/deny`, {
      reason: 'not during the freeze',
      _csrf: s.csrf,
    });
    expect(denied.status).toBe(303);
    expect((await task(person, id)).status).toBe('blocked');
    const audits = await call(`${api.url}/v1/tasks/${id}/audits?limit=50`, { key: person });
    expect(audits.body.items).toContainEqual(
      expect.objectContaining({
        event_type: 'GATE_DENIED',
        payload: expect.objectContaining({ denied_by_owner: 'Pat Person', reason: 'not during the freeze' }),
      }),
    );
    // Without the form token nothing is denied.
    await pause(ACME, `${id}-2`);
    const gate2 = (await task(person, `${id}-2`)).open_gates[0].gate_id as string;
    expect((await post(s, `/console/tasks/${id}-2/gates/${gate2}/deny`, { reason: 'x' })).status).toBe(403);
    expect((await task(person, `${id}-2`)).status).toBe('paused');
  });

  it('should list channels (host only, no secret) and the delivery log, and disable a channel', async () => {
    const manager = await api.createKey(ACME, ['notifications:write'], 'Nora Notifier');
    const created = await call(`${api.url}/v1/notification-channels`, {
      key: manager,
      body: {
        name: 'ops-hook',
        kind: 'webhook',
        url: 'http://127.0.0.1:9/secret-path-token',
        signing_secret: 'whsec_console_test_secret_0123456789abcdef',
      },
    });
    expect(created.status).toBe(201);
    const s = await session(manager);
    const page = await get(s, '/console/notifications');
    expect(page.status).toBe(200);
    const text = await page.text();
    expect(text).toContain('ops-hook');
    expect(text).toContain('127.0.0.1:9');
    expect(text).not.toMatch(/secret-path-token|whsec_console_test_secret/);
    const disabled = await post(s, `/console/notifications/channels/${created.body.channel_id}/disable`, {
      _csrf: s.csrf,
    });
    expect(disabled.status).toBe(303);
    const after = await call(`${api.url}/v1/notification-channels`, { key: manager });
    expect(after.body.items.find((c: { name: string }) => c.name === 'ops-hook').enabled).toBe(false);
    // A key without notifications:write gets the API's 403, not the page.
    expect((await get(await session(reader), '/console/notifications')).status).toBe(403);
  });
});
