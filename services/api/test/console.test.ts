/**
 * The console's pure parts: the signed session cookie and CSRF tokens, escaping by default, the diff renderer
 * with hostile file contents and paths, and "time left" before a deadline.
 */
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '@warden/domain';
import { renderFileDiff } from '../src/console/diff.js';
import { escapeHtml, html, trusted } from '../src/console/html.js';
import { SessionCodec } from '../src/console/session.js';
import { inboxItems, timeLeft } from '../src/console/views.js';

const SECRET = 'a'.repeat(32);
const XSS = `<img src=x onerror="alert(1)">`;

describe('SessionCodec', () => {
  const codec = new SessionCodec({ secret: SECRET, ttlMs: 60_000 });

  it('should verify the cookie it issued and carry the key id and tenant, not the key', () => {
    const { cookie, claims } = codec.issue('key-1', 'acme', 1_000);
    expect(codec.verify(cookie, 2_000)).toEqual(claims);
    expect(claims).toMatchObject({ keyId: 'key-1', tenantId: 'acme', expiresAt: 61_000 });
  });

  it('should refuse an expired cookie', () => {
    const { cookie } = codec.issue('key-1', 'acme', 1_000);
    expect(codec.verify(cookie, 61_000)).toBeUndefined();
  });

  it('should refuse a cookie whose payload was altered (another tenant) or signed with another secret', () => {
    const { cookie } = codec.issue('key-1', 'acme', 1_000);
    const [payload, signature] = cookie.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8'));
    const forged = Buffer.from(JSON.stringify({ ...claims, tenantId: 'globex' })).toString('base64url');
    expect(codec.verify(`${forged}.${signature}`, 2_000)).toBeUndefined();
    const other = new SessionCodec({ secret: 'b'.repeat(32) });
    expect(codec.verify(other.issue('key-1', 'acme', 1_000).cookie, 2_000)).toBeUndefined();
  });

  it('should refuse garbage without throwing', () => {
    for (const value of [
      undefined,
      '',
      '.',
      'x.y',
      'a'.repeat(5000),
      '%%%.%%%',
      `${'e30'}.${'x'.repeat(43)}`,
    ])
      expect(codec.verify(value, 2_000)).toBeUndefined();
  });

  it("should accept only the session's own CSRF token", () => {
    const a = codec.issue('key-1', 'acme').claims;
    const b = codec.issue('key-1', 'acme').claims;
    expect(codec.checkCsrf(a, codec.csrfToken(a))).toBe(true);
    expect(codec.checkCsrf(a, codec.csrfToken(b))).toBe(false);
    expect(codec.checkCsrf(a, undefined)).toBe(false);
    expect(codec.checkCsrf(a, ['x'])).toBe(false);
    expect(codec.checkCsrf(a, '')).toBe(false);
  });

  it('should bind the sign-in token to the pre-session value', () => {
    expect(codec.checkPreSession('v1', codec.preSessionToken('v1'))).toBe(true);
    expect(codec.checkPreSession('v2', codec.preSessionToken('v1'))).toBe(false);
    expect(codec.checkPreSession(undefined, codec.preSessionToken(''))).toBe(false);
  });

  it('should refuse a short secret', () => {
    expect(() => new SessionCodec({ secret: 'short' })).toThrow(/32 bytes/);
  });
});

describe('html', () => {
  it('should escape every interpolation, arrays included, but not trusted or nested html', () => {
    const out = html`<p title="${XSS}">${XSS}${[XSS, html`<b>${'&'}</b>`]}${trusted('<i>ok</i>')}</p>`.value;
    expect(out).not.toContain('<img');
    expect(out).toContain('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;');
    expect(out).toContain('<b>&amp;</b>');
    expect(out).toContain('<i>ok</i>');
    expect(escapeHtml(`'\`"`)).toBe('&#39;&#96;&quot;');
  });

  it('should render hostile waiting items as text', () => {
    const out = inboxItems({
      gates: [
        {
          gate_id: XSS,
          task_id: `t-${XSS}`,
          checkpoint: XSS,
          reason: XSS,
          opened_at: new Date().toISOString(),
          expires_at: null,
          task_status: 'paused',
          event_id: XSS,
          decision_reason: XSS,
          findings: [{ code: XSS, severity: XSS, message: XSS }],
        },
      ],
      changesets: [],
      findings: [],
      triggers: [],
    }).value;
    expect(out).not.toContain('<img');
    // The link's path segment is percent-encoded: an id cannot leave the href.
    expect(out).toContain('/console/tasks/t-%3Cimg%20src%3Dx%20onerror%3D%22alert(1)%22%3E');
  });
});

describe('renderFileDiff', () => {
  it('should render file contents as text', () => {
    const content = `</code></pre><script>alert(1)</script>${XSS}\n`;
    const diff = renderFileDiff(
      { operation: 'create', path: 'a.html', new_content: content, new_hash: sha256Hex(content) },
      0,
    );
    expect(diff.body.value).toContain('d2h-file-wrapper');
    expect(diff.body.value).not.toMatch(/<script|<img/);
    expect(diff.body.value).toContain('&lt;script&gt;');
  });

  it('should not let a path forge lines of the diff (the patch header names the file by position)', () => {
    const path = 'x\n+++ b/evil\n@@ -0,0 +1 @@\n+<script>alert(1)</script>';
    const diff = renderFileDiff(
      { operation: 'create', path, new_content: 'ok\n', new_hash: sha256Hex('ok\n') },
      3,
    );
    expect(diff.body.value).toContain('file-4');
    expect(diff.body.value).not.toContain('evil');
    expect(diff.path).toBe(path);
  });

  it('should say so when the old content is named by hash only', () => {
    const diff = renderFileDiff(
      {
        operation: 'update',
        path: 'a',
        old_hash: sha256Hex('x'),
        new_content: 'y\n',
        new_hash: sha256Hex('y\n'),
      },
      0,
    );
    expect(diff.body.value).toContain('by its hash only');
  });

  it('should summarize rather than render a huge file', () => {
    const content = 'x'.repeat(300 * 1024);
    const diff = renderFileDiff(
      { operation: 'create', path: 'big', new_content: content, new_hash: sha256Hex(content) },
      0,
    );
    expect(diff.body.value).toContain('too large to render');
  });
});

describe('timeLeft', () => {
  const now = Date.parse('2026-12-04T12:00:00Z');
  it('should say how long is left, and warn within the last hour', () => {
    expect(timeLeft('2026-12-05T14:30:00Z', now).value).toContain('1d 2h left');
    expect(timeLeft('2026-12-04T15:05:00Z', now).value).toContain('3h 5m left');
    expect(timeLeft('2026-12-04T12:20:00Z', now).value).toMatch(/soon.*20m left/);
    expect(timeLeft('2026-12-04T11:00:00Z', now).value).toContain('overdue');
    expect(timeLeft(null, now).value).toContain('no deadline');
    expect(timeLeft('garbage', now).value).toContain('no deadline');
  });
});
