/**
 * Notifications (docs/notifications.md) end to end through the real API and its notifier: channels managed over
 * `/v1/notification-channels`; a change set that needs approval writes its notification in its own transaction;
 * the notifier delivers it through the `notifications` queue to a local webhook receiver (signed, verified
 * here as a receiver would), retries after a 500, gives up after the cap — all visible in the delivery log —
 * and to a local stand-in of Slack's incoming webhooks. Secrets never come back from the API.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NOTIFICATION_EVENT_TYPES,
  WEBHOOK_REPLAY_WINDOW_SECONDS,
  verifyWebhookSignature,
} from '@warden/domain';
import { call, startTestApi, type TestApi } from '../support/api.js';
import { change, submission } from '../support/executor.js';
import { waitFor } from '../support/supervisor.js';

const TENANT = 'notify-acme';
const SECRET = 'whsec-0123456789abcdef0123456789abcdef';
const SLACK_PATH = '/services/T0000/B0000/slack-secret-token-xyz';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

/** A local HTTP receiver: each path answers as scripted, and every request is kept. */
async function startReceiver(script: (path: string, count: number) => number | 'hang') {
  const received: Received[] = [];
  const hanging: Array<() => void> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({
        path,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      });
      const answer = script(path, received.filter((r) => r.path === path).length);
      if (answer === 'hang') {
        hanging.push(() => res.destroy());
        return;
      }
      res.writeHead(answer, answer === 302 ? { location: 'http://169.254.169.254/' } : {});
      res.end(answer === 200 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    requestsTo: (path: string) => received.filter((r) => r.path === path),
    close: () =>
      new Promise<void>((resolve) => {
        hanging.forEach((end) => end());
        server.close(() => resolve());
      }),
  };
}

describe('notifications', () => {
  let api: TestApi;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let admin: string; // the tenant's admin: manages channels
  let manager: string; // notifications:write only
  let writer: string; // submits change sets (an agent's key)
  let agent: string; // events:write
  let outsider: string; // another tenant's admin

  beforeAll(async () => {
    receiver = await startReceiver((path, count) => {
      if (path === '/ok' || path === SLACK_PATH) return 200;
      if (path === '/flaky') return count === 1 ? 500 : 200;
      if (path === '/down') return 500;
      if (path === '/gone') return 404;
      if (path === '/redirect') return 302;
      if (path === '/hang') return 'hang';
      return 200;
    });
    api = await startTestApi({
      NOTIFIER_INTERVAL_MS: '100',
      NOTIFIER_BACKOFF_MS: '100',
      NOTIFIER_MAX_ATTEMPTS: '3',
      NOTIFIER_TIMEOUT_MS: '1000',
      PUBLIC_BASE_URL: 'https://warden.example.com',
    });
    admin = await api.createKey(TENANT, ['admin'], 'root@example.com');
    manager = await api.createKey(TENANT, ['notifications:write'], 'ops@example.com');
    writer = await api.createKey(TENANT, ['changesets:write'], 'docs-agent');
    agent = await api.createKey(TENANT, ['events:write', 'tasks:read'], 'billing-agent');
    outsider = await api.createKey('notify-globex', ['admin'], 'mallory');

    const channels = [
      { name: 'ok', kind: 'webhook', url: `${receiver.url}/ok`, signing_secret: SECRET },
      { name: 'flaky', kind: 'webhook', url: `${receiver.url}/flaky`, signing_secret: SECRET },
      { name: 'down', kind: 'webhook', url: `${receiver.url}/down`, signing_secret: SECRET },
      { name: 'gone', kind: 'webhook', url: `${receiver.url}/gone`, signing_secret: SECRET },
      { name: 'redirect', kind: 'webhook', url: `${receiver.url}/redirect`, signing_secret: SECRET },
      { name: 'hang', kind: 'webhook', url: `${receiver.url}/hang`, signing_secret: SECRET },
      { name: 'slack', kind: 'slack', url: `${receiver.url}${SLACK_PATH}` },
      { name: 'off', kind: 'webhook', url: `${receiver.url}/off`, signing_secret: SECRET, enabled: false },
      // Outside the egress allow-list (the test API allows 127.0.0.1 and localhost only).
      { name: 'elsewhere', kind: 'webhook', url: 'http://10.20.30.40:8080/hook', signing_secret: SECRET },
      { name: 'metadata', kind: 'slack', url: 'http://169.254.169.254/latest/meta-data/' },
      {
        name: 'findings-only',
        kind: 'webhook',
        url: `${receiver.url}/findings-only`,
        signing_secret: SECRET,
        events: ['finding.opened'],
      },
    ];
    for (const channel of channels) {
      const res = await call(`${api.url}/v1/notification-channels`, { key: manager, body: channel });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
    }
  });
  afterAll(async () => {
    await api?.stop();
    await receiver?.close();
  });

  const deliveries = async (channel: string) => {
    const res = await call(`${api.url}/v1/notification-deliveries?channel=${channel}&limit=200`, {
      key: manager,
    });
    expect(res.status).toBe(200);
    return res.body.items as Array<Record<string, unknown>>;
  };
  const settled = (channel: string, count = 1) =>
    waitFor(`${channel} deliveries to settle`, async () => {
      const items = await deliveries(channel);
      return items.length >= count && items.every((d) => d.status !== 'pending') ? items : undefined;
    });

  describe('channels', () => {
    it('should never answer a URL or a signing secret', async () => {
      const list = await call(`${api.url}/v1/notification-channels`, { key: manager });
      expect(list.status).toBe(200);
      expect(list.body.items.map((c: { name: string }) => c.name)).toContain('slack');
      const text = JSON.stringify(list.body);
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain('slack-secret-token');
      expect(text).not.toContain('/flaky');
      const slack = list.body.items.find((c: { name: string }) => c.name === 'slack');
      expect(slack).toMatchObject({ kind: 'slack', url_host: new URL(receiver.url).host });
      expect(slack.events).toEqual([...NOTIFICATION_EVENT_TYPES]);
    });

    it.each([
      [
        'a webhook without a signing secret',
        { name: 'x1', kind: 'webhook', url: 'https://example.com/h' },
        'signing_secret',
      ],
      [
        'a short signing secret',
        { name: 'x2', kind: 'webhook', url: 'https://example.com/h', signing_secret: 'short' },
        'signing_secret',
      ],
      ['a non-http URL', { name: 'x3', kind: 'slack', url: 'file:///etc/passwd' }, 'url'],
      [
        'credentials in the URL',
        { name: 'x4', kind: 'slack', url: 'https://u:p@hooks.example.com/x' },
        'url',
      ],
      [
        'an unknown event',
        { name: 'x5', kind: 'slack', url: 'https://hooks.example.com/x', events: ['task.everything'] },
        'events',
      ],
      ['an unknown kind', { name: 'x6', kind: 'email', url: 'https://example.com' }, 'kind'],
      [
        'an unknown field',
        { name: 'x7', kind: 'slack', url: 'https://hooks.example.com/x', headers: { a: 'b' } },
        'headers',
      ],
      [
        'a name with a path in it',
        { name: '../x', kind: 'slack', url: 'https://hooks.example.com/x' },
        'name',
      ],
    ])('should refuse %s with a 400 naming the field', async (_, body, field) => {
      const res = await call(`${api.url}/v1/notification-channels`, { key: manager, body });
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body.error.details)).toContain(field);
    });

    it('should refuse a second channel with the same name (409)', async () => {
      const res = await call(`${api.url}/v1/notification-channels`, {
        key: manager,
        body: { name: 'ok', kind: 'slack', url: 'https://hooks.example.com/x' },
      });
      expect(res.status).toBe(409);
    });

    it("should refuse an agent's key and hide the channels from another tenant", async () => {
      expect((await call(`${api.url}/v1/notification-channels`, { key: agent })).status).toBe(403);
      expect((await call(`${api.url}/v1/notification-channels`, { key: writer })).status).toBe(403);
      const foreign = await call(`${api.url}/v1/notification-channels/ok`, { key: outsider });
      expect(foreign.status).toBe(404);
      expect((await call(`${api.url}/v1/notification-channels`, { key: outsider })).body.items).toEqual([]);
      const del = await call(`${api.url}/v1/notification-channels/ok`, { key: outsider, method: 'DELETE' });
      expect(del.status).toBe(404);
    });
  });

  describe('when a change set waits for approval', () => {
    let submittedIn: number;

    beforeAll(async () => {
      const started = Date.now();
      const res = await call(`${api.url}/v1/changesets`, {
        key: writer,
        body: submission({
          changesetId: 'notify-1',
          workspace: 'app',
          changes: [change.create('docs/notify-1.schema.json', '{}\n')],
        }),
      });
      submittedIn = Date.now() - started;
      expect(res.status).toBe(201);
      expect(res.body.approval.state).toBe('pending');
    });

    it('should deliver a signed webhook a receiver can verify', async () => {
      const [delivery] = await settled('ok');
      expect(delivery).toMatchObject({
        status: 'delivered',
        attempts: 1,
        last_error: null,
        last_status_code: 200,
      });
      const [request] = receiver.requestsTo('/ok');
      expect(request!.headers['content-type']).toBe('application/json');
      expect(request!.headers['x-warden-event']).toBe('changeset.awaiting_approval');
      const verdict = verifyWebhookSignature({
        secret: SECRET,
        body: request!.body,
        signature: request!.headers['x-warden-signature'] as string,
        timestamp: request!.headers['x-warden-timestamp'] as string,
      });
      expect(verdict).toEqual({ valid: true });
      const event = JSON.parse(request!.body);
      expect(event).toMatchObject({
        event_id: delivery!.event_id,
        event_type: 'changeset.awaiting_approval',
        tenant_id: TENANT,
        subject: { kind: 'changeset', id: 'notify-1' },
        console_path: '/console/changesets/notify-1',
      });
      expect(event.summary).toMatch(/notify-1.*waits for approval/);
    });

    it('should not verify a tampered, replayed or wrongly keyed request', () => {
      const [request] = receiver.requestsTo('/ok');
      const signature = request!.headers['x-warden-signature'] as string;
      const timestamp = request!.headers['x-warden-timestamp'] as string;
      const base = { secret: SECRET, body: request!.body, signature, timestamp };
      expect(
        verifyWebhookSignature({ ...base, body: request!.body.replace('notify-1', 'notify-2') }),
      ).toEqual({
        valid: false,
        reason: 'bad_signature',
      });
      expect(verifyWebhookSignature({ ...base, secret: `${SECRET}x` }).valid).toBe(false);
      // The same signature with another timestamp does not hold: the timestamp is signed.
      expect(verifyWebhookSignature({ ...base, timestamp: String(Number(timestamp) + 1) }).valid).toBe(false);
      const later = new Date((Number(timestamp) + WEBHOOK_REPLAY_WINDOW_SECONDS + 1) * 1000);
      expect(verifyWebhookSignature({ ...base, now: later })).toEqual({
        valid: false,
        reason: 'stale_timestamp',
      });
      expect(verifyWebhookSignature({ ...base, signature: undefined }).valid).toBe(false);
    });

    it('should retry after a 500 and then deliver', async () => {
      const [delivery] = await settled('flaky');
      expect(delivery).toMatchObject({
        status: 'delivered',
        attempts: 2,
        last_error: null,
        last_status_code: 200,
      });
      const requests = receiver.requestsTo('/flaky');
      expect(requests).toHaveLength(2);
      // The same event both times: a receiver dedupes on event_id.
      expect(JSON.parse(requests[0]!.body).event_id).toBe(JSON.parse(requests[1]!.body).event_id);
      expect(requests[1]!.at - requests[0]!.at).toBeGreaterThanOrEqual(90);
    });

    it('should give up after the cap and say so in the delivery log', async () => {
      const [delivery] = await settled('down');
      expect(delivery).toMatchObject({
        status: 'failed',
        attempts: 3,
        last_status_code: 500,
        last_error: 'the receiver answered 500',
      });
      expect(receiver.requestsTo('/down')).toHaveLength(3);
      const failed = await call(`${api.url}/v1/notification-deliveries?status=failed`, { key: admin });
      expect(failed.body.items.map((d: { channel_id: string }) => d.channel_id)).toContain(
        delivery!.channel_id,
      );
    });

    it('should not retry an answer retrying cannot change (404) nor follow a redirect', async () => {
      const [gone] = await settled('gone');
      expect(gone).toMatchObject({ status: 'failed', attempts: 1, last_status_code: 404 });
      const [redirect] = await settled('redirect');
      expect(redirect).toMatchObject({ status: 'failed', attempts: 1, last_status_code: 302 });
      expect(redirect!.last_error).toMatch(/redirects are never followed/);
      expect(receiver.requestsTo('/redirect')).toHaveLength(1);
    });

    it('should refuse, without a request and without retrying, a channel the egress policy does not allow', async () => {
      const [elsewhere] = await settled('elsewhere');
      expect(elsewhere).toMatchObject({ status: 'failed', attempts: 1, last_status_code: null });
      expect(elsewhere!.last_error).toMatch(
        /egress refused: host "10\.20\.30\.40" is not in EGRESS_ALLOWED_HOSTS/,
      );
      const [metadata] = await settled('metadata');
      expect(metadata).toMatchObject({ status: 'failed', attempts: 1 });
      expect(metadata!.last_error).toMatch(/egress refused/);
    });

    it('should post a Slack message linking to the console item', async () => {
      const [delivery] = await settled('slack');
      expect(delivery).toMatchObject({ status: 'delivered', attempts: 1 });
      const [request] = receiver.requestsTo(SLACK_PATH);
      expect(request!.headers['content-type']).toMatch(/application\/json/);
      const message = JSON.parse(request!.body);
      expect(message.text).toMatch(/^A change set waits for approval: Change set notify-1/);
      expect(message.blocks.map((b: { type: string }) => b.type)).toEqual([
        'header',
        'section',
        'context',
        'actions',
      ]);
      expect(message.blocks[3].elements[0]).toMatchObject({
        type: 'button',
        url: 'https://warden.example.com/console/changesets/notify-1',
      });
    });

    it('should send nothing to a disabled channel or one not subscribed to the event', async () => {
      await settled('hang');
      expect(await deliveries('off')).toEqual([]);
      expect(await deliveries('findings-only')).toEqual([]);
      expect(receiver.requestsTo('/off')).toHaveLength(0);
      expect(receiver.requestsTo('/findings-only')).toHaveLength(0);
    });

    it('should never slow the decision: a hanging channel times out in the background', async () => {
      expect(submittedIn).toBeLessThan(2000);
      const [hang] = await settled('hang');
      expect(hang).toMatchObject({ status: 'failed', attempts: 3, last_error: 'the request timed out' });
    });

    it('should keep secrets out of the delivery log', async () => {
      const all = await call(`${api.url}/v1/notification-deliveries?limit=200`, { key: manager });
      const text = JSON.stringify(all.body);
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain('slack-secret-token');
      expect(text).not.toContain(receiver.url);
    });
  });

  describe('when a channel is disabled or deleted', () => {
    it('should stop delivering to it and keep the log of a deleted one out of sight', async () => {
      const patch = await call(`${api.url}/v1/notification-channels/ok`, {
        key: manager,
        method: 'PATCH',
        body: { enabled: false },
      });
      expect(patch.status).toBe(200);
      expect(patch.body.enabled).toBe(false);
      const slackSecret = await call(`${api.url}/v1/notification-channels/slack`, {
        key: manager,
        method: 'PATCH',
        body: { signing_secret: SECRET },
      });
      expect(slackSecret.status).toBe(400);
      const del = await call(`${api.url}/v1/notification-channels/down`, { key: manager, method: 'DELETE' });
      expect(del.status).toBe(200);
      expect((await call(`${api.url}/v1/notification-channels/down`, { key: manager })).status).toBe(404);
    });
  });
});
