/**
 * Fuzzes every route the API serves — found by walking the express router, so a route missing from the
 * OpenAPI document is fuzzed too — with hostile path parameters, query strings, headers and bodies (the
 * causes of the 500s the first fuzzing run found, plus seeded random JSON from fast-check), sent with a key of
 * every scope. No answer may be a 5xx; every 4xx must be the one error shape. Then one focused test per cause.
 *
 * Seeded and bounded: FUZZ_SEED picks another corpus; the run stops starting requests after FUZZ_BUDGET_MS.
 */
import http from 'node:http';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MAX_JSON_DEPTH,
  PLATFORM_SCOPES,
  RESERVED_TASK_ID_PREFIXES,
  SCOPES,
  encodeCursor,
  type Scope,
} from '@warden/domain';
import { errorMiddleware } from '@warden/api';
import { createLogger } from '@warden/observability';
import { call, event, startTestApi, type TestApi } from '../support/api.js';
import { change, submission } from '../support/executor.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_122);
const BUDGET_MS = Number(process.env.FUZZ_BUDGET_MS ?? 35_000);
const CONCURRENCY = 6;
const PER_ROUTE = 90;
const TENANT = 'fuzz';

// ── what is served ────────────────────────────────────────────────────────────────────────────────────────

interface ServedRoute {
  method: string;
  /** Express path syntax (`/v1/tasks/:id`); a `use` mount without routes ends in `/*` and gets any suffix. */
  path: string;
}

interface LayerLike {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  rawPath?: unknown;
  handle?: { stack?: LayerLike[]; router?: { stack?: LayerLike[] }; name?: string };
  name?: string;
}

const join = (prefix: string, path: string) =>
  (prefix + (path === '/' ? '' : path)).replace(/\/+/g, '/') || '/';

/** Every route in an express 5 router (router 2.x: `rawPath` is the mount path), mounts included. */
function servedRoutes(stack: LayerLike[], prefix = ''): ServedRoute[] {
  const routes: ServedRoute[] = [];
  for (const layer of stack) {
    if (layer.route) {
      const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
      for (const method of Object.keys(layer.route.methods).filter((m) => m !== '_all'))
        for (const path of paths)
          routes.push({ method: method.toUpperCase(), path: join(prefix, path) || '/' });
      continue;
    }
    const mount = typeof layer.rawPath === 'string' ? layer.rawPath : '/';
    const inner = layer.handle?.stack ?? layer.handle?.router?.stack;
    if (inner) routes.push(...servedRoutes(inner, join(prefix, mount)));
    // A middleware mounted at a path that serves on its own (express.static under Bull Board).
    else if (mount !== '/' && layer.name === 'serveStatic')
      routes.push({ method: 'GET', path: join(prefix, mount) + '/*' });
  }
  return routes;
}

const dedupe = (routes: ServedRoute[]) => [
  ...new Map(routes.map((r) => [`${r.method} ${r.path}`, r])).values(),
];

// ── sending raw requests (fetch would normalise the very paths we want to send) ───────────────────────────

interface RawRequest {
  method: string;
  target: string;
  headers: Record<string, string>;
  body?: Buffer | string;
  label: string;
}

interface RawResponse {
  status: number;
  text: string;
  contentType: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function send(port: number, request: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers = { ...request.headers };
    if (request.body !== undefined) headers['content-length'] = String(Buffer.byteLength(request.body));
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: request.method,
        path: request.target,
        headers,
        agent,
        timeout: 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString('utf8'),
            contentType: String(res.headers['content-type'] ?? ''),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timed out: ${request.label}`)));
    req.on('error', reject);
    if (request.body !== undefined) req.write(request.body);
    req.end();
  });
}

/** `{ error: { code, message, details: [{ path, message }] } }`, or what is wrong with it. */
function shapeProblem(response: RawResponse): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(response.text);
  } catch {
    return `not JSON: ${response.text.slice(0, 120)}`;
  }
  const error = (parsed as { error?: { code?: unknown; message?: unknown; details?: unknown } }).error;
  if (
    !error ||
    typeof error.code !== 'string' ||
    typeof error.message !== 'string' ||
    !Array.isArray(error.details)
  )
    return `not the error shape: ${response.text.slice(0, 200)}`;
  for (const detail of error.details as Array<{ path?: unknown; message?: unknown }>)
    if (typeof detail?.path !== 'string' || typeof detail?.message !== 'string')
      return `a detail without path/message: ${response.text.slice(0, 200)}`;
  if (/\bat \S+ \(|\.[cm]?[jt]s:\d+:\d+|node:internal/.test(response.text))
    return `a stack trace: ${response.text.slice(0, 200)}`;
  return undefined;
}

// ── the corpus ────────────────────────────────────────────────────────────────────────────────────────────

function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]! };
}

const nested = (levels: number, leaf = '1') => '{"a":'.repeat(levels) + leaf + '}'.repeat(levels);
const nestedArrays = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
const cursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const cursorRaw = (json: string) => Buffer.from(json).toString('base64url');
/** Percent-encodes every byte of the UTF-8 of `value` that is not unreserved (lone surrogates become U+FFFD). */
const pct = (value: string) =>
  [...Buffer.from(value, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9_.~-]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');

const UUID = '00000000-0000-4000-8000-000000000000';

/** Path parameter values, sent raw: malformed escapes, NUL, encoded surrogates, traversal, giants. */
const HOSTILE_SEGMENTS = [
  '%E0%A4%A',
  '%',
  '%%',
  '%zz',
  '%E0%A4',
  '%00',
  'a%00b',
  '%ED%A0%80',
  '%ED%B0%80',
  '%C0%AF',
  '%C0%80',
  '%FF',
  '..',
  '%2e%2e',
  '%2F',
  'a%2Fb',
  '%5C',
  '%0A',
  '%0D%0A',
  '%20',
  '%7F',
  '%F0%9F%92%A9',
  'changeset:fuzz-cs',
  'trigger:fuzz-trigger',
  'CHANGESET:x',
  '99999999999999999999999',
  '-1',
  '0',
  'null',
  '__proto__',
  'constructor',
  'toString',
  'a'.repeat(250),
  'b'.repeat(5000),
  UUID,
  'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz',
  '0123456789abcdef',
  'FFFFFFFFFFFFFFFF',
  'fuzz-task',
  'fuzz-gate',
  'fuzz-trigger',
  'fuzz-cs',
  'queue',
  'supervisor-events',
  'completed',
  ':id',
];

const CURSORS = [
  cursor({ after: '9'.repeat(30) }),
  cursor({ after: '9223372036854775808' }),
  cursor({ after: '-1' }),
  cursor({ after: '1.5' }),
  cursor({ after: 1 }),
  cursor({ after: '\u0000' }),
  cursorRaw('{"after":"\\ud800"}'),
  cursor({ after: 'a'.repeat(100) }),
  cursor({ submitted_at: '0000-01-01T00:00:00Z', changeset_id: 'x' }),
  cursor({ submitted_at: '9999-12-31T23:59:59Z', changeset_id: '\u0000' }),
  cursor({ created_at: '0000-01-01T00:00:00Z', scan_id: UUID }),
  cursor({ created_at: '2024-01-01T00:00:00Z', scan_id: 'nope' }),
  cursor({ last_seen_at: '0000-01-01T00:00:00.000Z', fingerprint: '\u0000' }),
  cursorRaw('{"last_seen_at":"2024-01-01T00:00:00Z","fingerprint":"\\udc00"}'),
  cursor({ s: '1', id: UUID }),
  cursor({ s: '+275760-09-13T00:00:00.000Z', id: UUID }),
  cursor({ s: '-271821-04-20T00:00:00.000Z', id: UUID }),
  cursor({ s: '0000-01-01', id: UUID }),
  cursor({ s: 'Tue', id: UUID }),
  cursor({ after: '\u0000trigger' }),
  cursorRaw(nested(3000)),
  cursorRaw(nestedArrays(5000)),
  cursorRaw('{"after":'),
  'not-base64!',
  '%E0%A4%A',
  '%00',
  '',
  '='.repeat(10),
];

const QUERIES = [
  'limit=1&limit=2',
  'limit=abc',
  'limit=-5',
  'limit=0',
  'limit=1e400',
  'limit=1e2',
  'limit=99999999999999999999',
  'limit=',
  'limit=%00',
  'limit=0x10',
  'limit=NaN',
  'limit=Infinity',
  'limit[]=1',
  'limit[a]=1',
  'status=a&status=b',
  'status=%00',
  'status=%ED%A0%80',
  'a[b]=c',
  '%E0%A4%A=1',
  'x=%E0%A4%A',
  '%00=1',
  'scope=all',
  'scope=all&scope=all',
  'force=maybe',
  'force=true',
  'fires=1e9',
  'fires=-1',
  'window_hours=0',
  'window_hours=99999999999',
  `event_id=${'x'.repeat(300)}`,
  'event_id=%00',
  'unlinked=yes',
  'unlinked=true',
  'severity=%00',
  'severity=HIGH',
  'window=%00',
  'window=99999d',
  'code=%00',
  `code=${'c'.repeat(5000)}`,
  'tag=%00',
  'enabled=maybe',
  '&&&',
  '=',
  '==',
  '?',
  '%',
  ...CURSORS.map((c) => `cursor=${encodeURIComponent(c)}`),
];

const HOSTILE_LEAVES: unknown[] = [
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udc00y',
  '\udbff\udbff',
  '',
  ' ',
  'x'.repeat(100_000),
  -1,
  0,
  1e308,
  -1e308,
  2 ** 63,
  1.5,
  true,
  null,
  [],
  {},
  [[[[[]]]]],
  { __proto__: { polluted: 1 } },
  'http://[',
  'http://a b',
  'javascript:alert(1)',
  'https://\u0000',
  '0000-01-01T00:00:00Z',
  '2024-01-01T00:00:00-23:59',
  '9999-12-31T23:59:59+15:59',
  '2024-02-30T00:00:00Z',
  'changeset:fuzz-cs',
  'trigger:fuzz-trigger',
  '../../etc/passwd',
  '@every 0s',
  '* * * * * * *',
  'Mars/Olympus_Mons',
  '9'.repeat(40),
  '\u202e',
  '%E0%A4%A',
  '${jndi:x}',
  "'; drop table tasks; --",
];

function withDeepValue(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

/** Replaces a random leaf (or adds a key) of `seed` with `leaf`, walking without recursion. */
function mutate(seed: unknown, leaf: unknown, random: ReturnType<typeof prng>): unknown {
  const copy = structuredClone(seed) as Record<string, unknown>;
  const slots: Array<{ parent: Record<string, unknown> | unknown[]; key: string | number }> = [];
  const stack: unknown[] = [copy];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object') continue;
    for (const [key, value] of Object.entries(node)) {
      slots.push({ parent: node as Record<string, unknown>, key: Array.isArray(node) ? Number(key) : key });
      stack.push(value);
    }
  }
  if (slots.length === 0 || random.next() < 0.15) {
    copy[random.pick(['extra', '\u0000', '\ud800', '__proto__', 'constructor', 'events', 'payload'])] = leaf;
    return copy;
  }
  const slot = random.pick(slots);
  (slot.parent as Record<string | number, unknown>)[slot.key] = leaf;
  return copy;
}

/** Valid-looking bodies per route, so hostile leaves get past the first field check and deep into the route. */
function seedBodies(path: string): unknown[] {
  const nowish = new Date().toISOString();
  if (path === '/v1/events')
    return [
      event('fuzz-e1', { task_id: 'fuzz-task', ts: nowish, trace_id: 't' }),
      { events: [event('fuzz-e2'), event('fuzz-e3')] },
    ];
  if (path === '/v1/changesets')
    return [
      submission({
        changesetId: 'fuzz-cs-2',
        workspace: 'default',
        changes: [change.create('docs/fuzz.md', 'hello\n')],
      }),
    ];
  if (path === '/v1/triggers' || path === '/v1/triggers/:name')
    return [
      {
        event_name: 'fuzz-trigger-2',
        expression: '0 0 1 1 *',
        agent: { queue: 'fuzz-agent' },
        fallback: { url: 'https://example.com/hook', timeoutMs: 1000 },
        timezone: 'UTC',
        tags: ['a'],
        description: 'd',
      },
    ];
  if (path.endsWith('/run'))
    return [{ params: { a: 1, b: ['x'] }, override_overlap: false, request_id: 'r1' }];
  if (path.endsWith('/resume')) return [{ note: 'n', backfill: true }];
  if (path.endsWith('/silence')) return [{ for: '12h', note: 'n' }, { until: nowish }];
  if (path.endsWith('/approve')) return [{ checksum: '0'.repeat(64), note: 'n' }];
  if (path.endsWith('/reject')) return [{ reason: 'r' }];
  if (path === '/v1/lead/scans') return [{ window: '24h', dry_run: true, force: false }];
  if (path === '/v1/policies') return [{ kind: 'supervisor', source: 'version: fuzz\n', note: 'n' }];
  if (path.endsWith('/rollback')) return [{ to_version: 1, reason: 'r' }];
  return [{ note: 'n' }];
}

const PARAM_VALUES: Record<string, string> = {
  id: 'fuzz-task',
  gate: 'fuzz-gate',
  name: 'fuzz-trigger',
  execution: UUID,
  fingerprint: '0123456789abcdef',
  queueName: 'supervisor-events',
  jobId: '1',
  queueStatus: 'completed',
  schedulerId: 'fuzz',
  kind: 'supervisor',
  version: '1',
};

function paramNames(path: string): string[] {
  return [...path.matchAll(/[:*]([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
}

function fillPath(route: ServedRoute, values: Record<string, string>): string {
  let path = route.path.replace(/[{}]/g, '');
  if (path.endsWith('/*')) path = path.slice(0, -1) + (values['*'] ?? 'main.js');
  return path.replace(/[:*]([A-Za-z0-9_]+)/g, (_, name: string) => values[name] ?? PARAM_VALUES[name] ?? 'x');
}

function validParamsFor(route: ServedRoute): Record<string, string> {
  // `:id` is a task id under /tasks, a change set id under /changesets, a scan id under /lead/scans.
  if (route.path.includes('/changesets/')) return { id: 'fuzz-cs' };
  if (route.path.includes('/lead/scans/')) return { id: UUID };
  return {};
}

const BODY_HEADER_CASES: Array<{
  label: string;
  headers: Record<string, string>;
  body: (json: string) => Buffer | string;
}> = [
  { label: 'content-encoding bogus', headers: { 'content-encoding': 'bogus' }, body: (j) => j },
  { label: 'content-encoding gzip, not gzip', headers: { 'content-encoding': 'gzip' }, body: (j) => j },
  {
    label: 'content-encoding deflate, not deflate',
    headers: { 'content-encoding': 'deflate' },
    body: (j) => j,
  },
  { label: 'content-encoding br, not br', headers: { 'content-encoding': 'br' }, body: (j) => j },
  {
    label: 'content-encoding gzip, truncated',
    headers: { 'content-encoding': 'gzip' },
    body: (j) => zlib.gzipSync(j).subarray(0, 12),
  },
  {
    label: 'content-encoding gzip, valid',
    headers: { 'content-encoding': 'gzip' },
    body: (j) => zlib.gzipSync(j),
  },
  {
    label: 'content-encoding gzip, gzip',
    headers: { 'content-encoding': 'gzip, gzip' },
    body: (j) => zlib.gzipSync(zlib.gzipSync(j)),
  },
  {
    label: 'gzip bomb',
    headers: { 'content-encoding': 'gzip' },
    body: () => zlib.gzipSync(Buffer.alloc(12_000_000, 32)),
  },
  { label: 'content-type text/plain', headers: { 'content-type': 'text/plain' }, body: (j) => j },
  { label: 'content-type missing', headers: { 'content-type': '' }, body: (j) => j },
  {
    label: 'charset klingon',
    headers: { 'content-type': 'application/json; charset=klingon' },
    body: (j) => j,
  },
  {
    label: 'charset utf-16',
    headers: { 'content-type': 'application/json; charset=utf-16' },
    body: (j) => j,
  },
  {
    label: 'charset latin1',
    headers: { 'content-type': 'application/json; charset=latin1' },
    body: (j) => j,
  },
  { label: 'content-type garbage', headers: { 'content-type': ';;;==;' }, body: (j) => j },
  {
    label: 'content-type params only',
    headers: { 'content-type': 'application/json; charset' },
    body: (j) => j,
  },
  { label: 'content-type +json', headers: { 'content-type': 'application/vnd.x+json' }, body: (j) => j },
  {
    label: 'content-type multipart',
    headers: { 'content-type': 'multipart/form-data; boundary=x' },
    body: (j) => j,
  },
  {
    label: 'invalid UTF-8 bytes',
    headers: {},
    body: () => Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]),
  },
];

const AUTH_CASES: Array<(key: string) => Record<string, string>> = [
  () => ({}),
  () => ({ authorization: 'Bearer' }),
  () => ({ authorization: 'Bearer wdn_nope' }),
  () => ({ authorization: 'Basic %%%%' }),
  () => ({ authorization: `Basic ${Buffer.from('x:\u00ff\u0000').toString('base64')}` }),
  (key) => ({ authorization: `Bearer ${key} trailing` }),
  (key) => ({ authorization: `bearer   ${key}` }),
  (key) => ({ authorization: `Bearer ${key}`, 'x-trace-id': 'x'.repeat(8000) }),
  (key) => ({
    authorization: `Bearer ${key}`,
    accept: 'application/xml',
    'if-none-match': '*',
    range: 'bytes=5-1',
  }),
  (key) => ({
    authorization: `Bearer ${key}`,
    'if-modified-since': 'yesterday',
    'accept-encoding': 'gzip;q=bogus',
  }),
];

// ── the test ──────────────────────────────────────────────────────────────────────────────────────────────

describe('API fuzz', () => {
  let api: TestApi;
  let port: number;
  const keys = new Map<Scope, string>();
  let routes: ServedRoute[];
  // The key that passes a route's scope check: admin everywhere but on the event routes, which only an agent's
  // key may use (admin keys are people's and never write events: separation of duties).
  const passingKey = (path: string) =>
    keys.get(
      path.startsWith('/v1/events')
        ? 'events:write'
        : path.startsWith('/admin/queues')
          ? 'platform:operate'
          : 'admin',
    )!;
  // A console session (signed in with the admin key), so hostile input reaches the console's handlers too; not on
  // its event stream, which stays open by design.
  let consoleCookie = '';
  const consoleSession = (path: string): Record<string, string> =>
    path.startsWith('/console') && path !== '/console/events' ? { cookie: consoleCookie } : {};

  beforeAll(async () => {
    api = await startTestApi();
    port = Number(new URL(api.url).port);
    for (const scope of SCOPES)
      // A platform scope is never a tenant's: Bull Board gets an operator's key.
      keys.set(
        scope,
        PLATFORM_SCOPES.includes(scope)
          ? await api.createOperatorKey()
          : await api.createKey(TENANT, [scope]),
      );
    const signInPage = await fetch(`${api.url}/console/sign-in`);
    const pre = signInPage.headers.getSetCookie()[0]!.split(';')[0]!;
    const token = /name="_csrf" value="([^"]+)"/.exec(await signInPage.text())![1]!;
    const signedIn = await fetch(`${api.url}/console/sign-in`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: pre },
      body: new URLSearchParams({ _csrf: token, api_key: keys.get('admin')! }).toString(),
    });
    consoleCookie = signedIn.headers
      .getSetCookie()
      .find((c) => c.startsWith('warden_console='))!
      .split(';')[0]!;
    // Objects for the routes to find, so that hostile input gets past "not found" into the code behind it.
    await api.db
      .insertInto('tasks')
      .values({ tenant_id: TENANT, task_id: 'fuzz-task', status: 'paused', metadata: JSON.stringify({}) })
      .execute();
    await api.db
      .insertInto('task_gates')
      .values({
        tenant_id: TENANT,
        gate_id: 'fuzz-gate',
        task_id: 'fuzz-task',
        checkpoint: 'plan',
        reason: 'fuzz',
      })
      .execute();
    const admin = keys.get('admin')!;
    const trigger = await call(`${api.url}/v1/triggers`, {
      key: admin,
      body: { event_name: 'fuzz-trigger', expression: '0 0 1 1 *', agent: { queue: 'fuzz-agent' } },
    });
    expect(trigger.status).toBe(201);
    const cs = await call(`${api.url}/v1/changesets`, {
      key: keys.get('changesets:write')!,
      body: submission({
        changesetId: 'fuzz-cs',
        workspace: 'default',
        changes: [change.create('docs/a.md', 'a\n')],
        plan: { risk_level_proposed: 'HIGH' },
      }),
    });
    expect(cs.status).toBe(201);
    await api.db
      .insertInto('lead_findings')
      .values({
        tenant_id: TENANT,
        fingerprint: '0123456789abcdef',
        code: 'FUZZ',
        severity: 'LOW',
        title: 'fuzz',
        description: 'fuzz',
        window_kind: '24h',
        dimensions: JSON.stringify({}),
        first_seen_at: new Date(),
        last_seen_at: new Date(),
        evidence: JSON.stringify({}),
      })
      .execute();
    const app = api.service.app() as unknown as {
      router: { stack: LayerLike[] };
      locals: { mountedApps?: Array<{ path: string; app: { router: { stack: LayerLike[] } } }> };
    };
    routes = dedupe([
      ...servedRoutes(app.router.stack),
      ...(app.locals.mountedApps ?? []).flatMap((mounted) =>
        servedRoutes(mounted.app.router.stack, mounted.path),
      ),
    ]);
    expect(routes.some((r) => r.path.startsWith('/admin/queues/api/'))).toBe(true);
  });

  afterAll(async () => {
    agent.destroy();
    await api?.stop();
  });

  it('should know every served route, the OpenAPI document among them', async () => {
    const openapi = (await call(`${api.url}/openapi.json`)).body as {
      paths: Record<string, Record<string, unknown>>;
    };
    const served = new Set(routes.map((r) => `${r.method} ${r.path}`));
    const documented = Object.entries(openapi.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ':$1')}`),
    );
    expect(documented.filter((route) => !served.has(route))).toEqual([]);
    expect(routes.length).toBeGreaterThan(documented.length);
    const undocumented = [...served].filter((r) => r.includes(' /v1/') && !documented.includes(r));
    if (undocumented.length > 0)
      console.log(`api fuzz: served but not in /openapi.json: ${undocumented.join(', ')}`);
  });

  it('should answer no input with a 5xx, and every 4xx in the one error shape', async () => {
    const random = prng(SEED);
    // Its own stream, so that signing console requests in leaves every other sampled case as it was.
    const consoleRandom = prng(SEED + 7);
    const scopeKeys = [...keys.values()];
    const jsonSamples = fc.sample(fc.jsonValue({ maxDepth: 6 }), { seed: SEED, numRuns: 400 });
    const stringSamples = fc.sample(fc.string({ unit: 'binary', maxLength: 40 }), {
      seed: SEED + 1,
      numRuns: 400,
    });
    const queryDicts = fc.sample(
      fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 20 }), {
        maxKeys: 4,
      }),
      { seed: SEED + 2, numRuns: 400 },
    );
    const requests: Array<RawRequest & { route: string }> = [];

    for (const route of routes) {
      const id = `${route.method} ${route.path}`;
      const names = paramNames(route.path);
      const valid = validParamsFor(route);
      const own: Array<Omit<RawRequest, 'label'> & { label: string }> = [];
      // Most requests carry the key that passes the scope check (admin), the rest a key of each other scope.
      const keyFor = () => (random.next() < 0.55 ? passingKey(route.path) : random.pick(scopeKeys));
      // A third of the console's requests signed in: its pages do several reads each, and the budget is shared.
      const auth = () => ({
        authorization: `Bearer ${keyFor()}`,
        ...(consoleRandom.next() < 0.35 ? consoleSession(route.path) : {}),
      });
      const target = (values: Record<string, string> = {}, query = '') =>
        fillPath(route, { ...valid, ...values }) + (query ? `?${query}` : '');
      const isWrite = route.method !== 'GET' && route.method !== 'HEAD';
      const json = () => ({ 'content-type': 'application/json' });

      // Path parameters: each hostile value in each parameter, the others valid; fast-check strings percent-encoded.
      for (const name of names.length > 0 ? names : route.path.endsWith('/*') ? ['*'] : [])
        for (const value of [
          ...HOSTILE_SEGMENTS,
          ...Array.from({ length: 6 }, () => pct(random.pick(stringSamples)) || '%20'),
        ])
          own.push({
            method: route.method,
            target: target({ [name]: value }),
            headers: auth(),
            label: `${name}=${value.slice(0, 40)}`,
          });
      // Queries.
      for (const query of QUERIES)
        own.push({
          method: route.method,
          target: target({}, query),
          headers: auth(),
          label: `?${query.slice(0, 60)}`,
        });
      for (let i = 0; i < 6; i++) {
        const dict = random.pick(queryDicts);
        const query = Object.entries(dict)
          .map(([k, v]) => `${pct(k)}=${pct(v)}`)
          .join('&');
        own.push({
          method: route.method,
          target: target({}, query),
          headers: auth(),
          label: `random query ${query.slice(0, 60)}`,
        });
      }
      // Bodies: raw hostile JSON, mutated valid bodies and random JSON; also on GET, where a body must be harmless.
      const raw = [
        '{"a":',
        '',
        'null',
        '[]',
        '"x"',
        '1',
        '{}',
        '{"note":"\\ud800"}',
        '{"note":"\\udc00x"}',
        '{"note":"\\u0000"}',
        '{"\\u0000":1}',
        '{"\\ud800":1}',
        '{"__proto__":{"x":1}}',
        '{"constructor":{"prototype":{"x":1}}}',
        '{"a":1e400}',
        '{"a":1,"a":2}',
        nested(3000),
        nestedArrays(3000),
        nested(MAX_JSON_DEPTH + 1),
        `{"events":${nestedArrays(100)}}`,
        `{"payload":${nested(100)}}`,
        `{"params":${nested(100)}}`,
        '\ufeff{}',
      ];
      for (const body of raw)
        own.push({
          method: route.method,
          target: target(),
          headers: { ...auth(), ...json() },
          body,
          label: `body ${body.slice(0, 40)}`,
        });
      for (const seed of seedBodies(route.path))
        for (let i = 0; i < (isWrite ? 14 : 3); i++) {
          const leaf =
            random.next() < 0.7
              ? random.pick(HOSTILE_LEAVES)
              : random.next() < 0.5
                ? withDeepValue(70)
                : random.pick(jsonSamples);
          const body = JSON.stringify(mutate(seed, leaf, random));
          own.push({
            method: route.method,
            target: target(),
            headers: { ...auth(), ...json() },
            body,
            label: `mutated body ${body.slice(0, 60)}`,
          });
        }
      for (let i = 0; i < (isWrite ? 5 : 1); i++) {
        const body = JSON.stringify(random.pick(jsonSamples)) ?? 'null';
        own.push({
          method: route.method,
          target: target(),
          headers: { ...auth(), ...json() },
          body,
          label: `random body ${body.slice(0, 60)}`,
        });
      }
      // Headers.
      const seedJson = JSON.stringify(seedBodies(route.path)[0]);
      for (const c of BODY_HEADER_CASES) {
        const headers: Record<string, string> = {
          ...auth(),
          'content-type': 'application/json',
          ...c.headers,
        };
        if (headers['content-type'] === '') delete headers['content-type'];
        own.push({ method: route.method, target: target(), headers, body: c.body(seedJson), label: c.label });
      }
      for (const headers of AUTH_CASES)
        own.push({
          method: route.method,
          target: target(),
          headers: headers(keyFor()),
          label: `headers ${Object.keys(headers(keyFor())).join(',')}`,
        });
      // Every scope's key once with a plain request: 403s must be in the shape too.
      for (const key of scopeKeys)
        own.push({
          method: route.method,
          target: target(),
          headers: { authorization: `Bearer ${key}` },
          label: 'scope',
        });

      // Bounded per route: a seeded sample keeps every kind of case in play while the total stays in budget.
      const chosen =
        own.length <= PER_ROUTE
          ? own
          : own
              .map((r) => ({ r, k: random.next() }))
              .sort((a, b) => a.k - b.k)
              .slice(0, PER_ROUTE)
              .map(({ r }) => r);
      requests.push(...chosen.map((r) => ({ ...r, route: id })));
    }
    // Interleave routes so that a budget cut does not skip whole routes: a Fisher-Yates shuffle (a sort with
    // a random comparator is biased, and left the last-listed routes at the end to be cut).
    for (let i = requests.length - 1; i > 0; i--) {
      const j = Math.floor(random.next() * (i + 1));
      [requests[i], requests[j]] = [requests[j]!, requests[i]!];
    }

    const failures: string[] = [];
    const byStatus = new Map<number, number>();
    const routesHit = new Set<string>();
    const started = Date.now();
    let next = 0;
    let sent = 0;
    const worker = async () => {
      while (next < requests.length && Date.now() - started < BUDGET_MS) {
        const request = requests[next++]!;
        let response: RawResponse;
        try {
          response = await send(port, request);
        } catch (error) {
          failures.push(`${request.route} [${request.label}]: no response: ${(error as Error).message}`);
          continue;
        }
        sent++;
        routesHit.add(request.route);
        byStatus.set(response.status, (byStatus.get(response.status) ?? 0) + 1);
        if (response.status >= 500)
          failures.push(
            `${request.route} [${request.label}] ${request.method} ${request.target.slice(0, 120)}: ${response.status} ${response.text.slice(0, 200)}`,
          );
        else if (response.status >= 400) {
          const problem = shapeProblem(response);
          if (problem)
            failures.push(
              `${request.route} [${request.label}] ${request.method} ${request.target.slice(0, 120)}: ${response.status} ${problem}`,
            );
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const fives = [...byStatus].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
    const statuses = [...byStatus]
      .sort(([a], [b]) => a - b)
      .map(([s, c]) => `${s} × ${c}`)
      .join(', ');
    console.log(
      `api fuzz: ${sent} requests over ${routesHit.size} routes, ${fives} × 5xx, by status: ${statuses} (seed ${SEED}, ${((Date.now() - started) / 1000).toFixed(1)} s)`,
    );
    expect(
      failures.sort((a, b) => Number(b.includes(': 5')) - Number(a.includes(': 5'))).slice(0, 30),
    ).toEqual([]);
    expect(routesHit.size).toBe(routes.length);
  }, 90_000);

  // ── one focused test per cause ──────────────────────────────────────────────────────────────────────────

  const raw = (request: Omit<RawRequest, 'label'>) => send(port, { ...request, label: 'focused' });
  const errorOf = (response: RawResponse) =>
    JSON.parse(response.text).error as {
      code: string;
      message: string;
      details: Array<{ path: string; message: string }>;
    };
  const authed = (target = '') => ({ authorization: `Bearer ${passingKey(target)}` });
  const jsonHeaders = (target = '') => ({ ...authed(target), 'content-type': 'application/json' });

  describe('path', () => {
    it.each([
      ['a malformed % escape', '/v1/tasks/%E0%A4%A', /not valid percent-encoded UTF-8/],
      ['a truncated % escape', '/v1/changesets/%E0%A4/audits', /not valid percent-encoded UTF-8/],
      ['an encoded lone surrogate', '/v1/triggers/%ED%A0%80', /not valid percent-encoded UTF-8/],
      ['NUL', '/v1/tasks/a%00b', /NUL/],
      ['NUL under Bull Board', '/admin/queues/queue/a%00b', /NUL/],
    ])('should answer 400 naming the path for %s', async (_name, target, message) => {
      const response = await raw({ method: 'GET', target, headers: authed() });
      expect(response.status).toBe(400);
      expect(errorOf(response).details[0]).toMatchObject({
        path: '(path)',
        message: expect.stringMatching(message),
      });
    });
  });

  describe('query', () => {
    it.each([
      ['a parameter given twice', '/v1/tasks/fuzz-task/audits?limit=1&limit=2', 'limit', /given 2 times/],
      ['a non-numeric limit', '/v1/changesets?limit=ten', 'limit', /number/],
      ['NUL', '/v1/lead/findings?code=a%00b', 'code', /NUL/],
      ['NUL in a trigger filter', '/v1/triggers?tag=%00', 'tag', /NUL/],
      [
        'a cursor past bigint',
        `/v1/tasks/fuzz-task/audits?cursor=${cursor({ after: '9223372036854775808' })}`,
        'cursor',
        /not a cursor/,
      ],
      [
        'a change-set cursor past bigint',
        `/v1/changesets/fuzz-cs/audits?cursor=${cursor({ after: '9'.repeat(25) })}`,
        'cursor',
        /not a cursor/,
      ],
      [
        'a cursor holding NUL',
        `/v1/triggers?cursor=${cursor({ after: '\u0000' })}`,
        'cursor',
        /not a cursor/,
      ],
      ['a cursor nested deep', `/v1/changesets?cursor=${cursorRaw(nested(20))}`, 'cursor', /not a cursor/],
      // Found by a newcomer's attack run: the filter was dropped and every decision of the task came back.
      [
        'a bracketed filter',
        '/v1/tasks/fuzz-task/decisions?event_id[]=x',
        'event_id[]',
        /bracketed query keys/,
      ],
      ['a bracketed limit', '/v1/changesets?limit[a]=1', 'limit[a]', /bracketed query keys/],
    ])('should answer 400 naming the parameter for %s', async (_name, target, path, message) => {
      const response = await raw({ method: 'GET', target, headers: authed() });
      expect(response.status).toBe(400);
      expect(errorOf(response).details).toContainEqual({ path, message: expect.stringMatching(message) });
    });

    it('should still page with a cursor at the top of the bigint range', async () => {
      const response = await raw({
        method: 'GET',
        target: `/v1/tasks/fuzz-task/audits?cursor=${cursor({ after: '9223372036854775807' })}`,
        headers: authed(),
      });
      expect(response.status).toBe(200);
    });
  });

  describe('headers', () => {
    it('should answer a request line over 16 KB with 431 in the error shape', async () => {
      const response = await raw({
        method: 'GET',
        target: `/v1/changesets?cursor=${'a'.repeat(20_000)}`,
        headers: authed(),
      });
      expect(response.status).toBe(431);
      expect(errorOf(response)).toMatchObject({
        code: 'headers_too_large',
        details: [{ path: '(request)' }],
      });
    });

    const body = JSON.stringify(event('hdr-1'));
    it.each([
      ['an unknown Content-Encoding', { 'content-encoding': 'bogus' }, body, 415, 'headers.content-encoding'],
      ['a gzip body that is not gzip', { 'content-encoding': 'gzip' }, body, 400, 'headers.content-encoding'],
      [
        'a brotli body that is not brotli',
        { 'content-encoding': 'br' },
        body,
        400,
        'headers.content-encoding',
      ],
      [
        'an unsupported charset',
        { 'content-type': 'application/json; charset=latin1' },
        body,
        415,
        'headers.content-type',
      ],
      ['a body that is not JSON', { 'content-type': 'text/plain' }, body, 415, 'headers.content-type'],
    ])('should answer 4xx naming the header for %s', async (_name, headers, payload, status, path) => {
      const response = await raw({
        method: 'POST',
        target: '/v1/events',
        headers: { ...jsonHeaders('/v1/events'), ...headers },
        body: payload,
      });
      expect(response.status).toBe(status);
      expect(errorOf(response).details[0]?.path).toBe(path);
    });

    it('should accept a gzip body that is gzip', async () => {
      const response = await raw({
        method: 'POST',
        target: '/v1/events',
        headers: { ...jsonHeaders('/v1/events'), 'content-encoding': 'gzip' },
        body: zlib.gzipSync(JSON.stringify(event('hdr-gzip'))),
      });
      expect(response.status).toBe(202);
    });
  });

  describe('body', () => {
    const post = (target: string, body: string, method = 'POST') =>
      raw({ method, target, headers: jsonHeaders(target), body });

    it('should answer 400 invalid_json for malformed JSON', async () => {
      const response = await post('/v1/events', '{"event_id": ');
      expect(response.status).toBe(400);
      expect(errorOf(response)).toMatchObject({ code: 'invalid_json', details: [{ path: '(root)' }] });
      expect(errorOf(response).message).toBe('request body is not valid JSON');
    });

    it.each(['null', '42', '"x"', 'true'])(
      'should say a body of %s is JSON but not an object',
      async (body) => {
        const response = await post('/v1/events', body);
        expect(response.status).toBe(400);
        expect(errorOf(response)).toMatchObject({
          code: 'invalid_json',
          message: 'request body must be a JSON object',
        });
      },
    );

    it('should refuse one event id twice in a batch with different content, naming the second', async () => {
      const response = await post(
        '/v1/events',
        JSON.stringify({ events: [event('twice-1'), event('twice-1', { task_id: 'another-task' })] }),
      );
      expect(response.status).toBe(400);
      expect(errorOf(response).details[0]).toMatchObject({ path: 'events.1.event_id' });
    });

    it('should refuse event fields beside a batch, which would be an event silently dropped', async () => {
      const response = await post(
        '/v1/events',
        JSON.stringify({ events: [event('beside-1')], ...event('beside-2') }),
      );
      expect(response.status).toBe(400);
      expect(errorOf(response).details[0]).toMatchObject({ message: expect.stringMatching(/events: \[/) });
      expect(errorOf(response).message).toMatch(/event_id/);
    });

    it.each([
      [
        'an event payload',
        '/v1/events',
        '{"event_id":"s1","task_id":"t","event_type":"X","payload":{"a":"\\ud800"}}',
        'payload.a',
      ],
      [
        'an event payload key',
        '/v1/events',
        '{"event_id":"s2","task_id":"t","event_type":"X","payload":{"k\\udc00":1}}',
        'payload.k\udc00',
      ],
      ['a task id', '/v1/events', '{"event_id":"s3","task_id":"t\\ud800","event_type":"X"}', 'task_id'],
      ['a gate release note', '/v1/tasks/fuzz-task/gates/fuzz-gate/release', '{"note":"\\ud800"}', 'note'],
      [
        'a trigger description',
        '/v1/triggers',
        '{"event_name":"sur","expression":"0 0 1 1 *","agent":{"queue":"q"},"description":"\\ud800"}',
        'description',
      ],
      ['a change-set rejection reason', '/v1/changesets/fuzz-cs/reject', '{"reason":"\\udbff"}', 'reason'],
      [
        'a change-set file content',
        '/v1/changesets',
        JSON.stringify(
          submission({
            changesetId: 'sur-cs',
            workspace: 'default',
            changes: [change.create('docs/s.md', 'x')],
          }),
        ).replace('"x"', '"\\ud800"'),
        'changeset.changes.0.new_content',
      ],
    ])('should answer 400 naming the field for a lone surrogate in %s', async (_name, target, body, path) => {
      const response = await post(target, body);
      expect(response.status).toBe(400);
      expect(errorOf(response).details).toContainEqual({
        path,
        message: expect.stringMatching(/lone UTF-16 surrogate/),
      });
    });

    it.each([
      [
        'an event payload',
        '/v1/events',
        JSON.stringify(event('n1', { payload: { deep: { note: 'a\u0000' } } })),
        'payload.deep.note',
        'POST',
      ],
      [
        'a trigger field',
        '/v1/triggers',
        JSON.stringify({
          event_name: 'nul',
          expression: '0 0 1 1 *',
          agent: { queue: 'q' },
          description: 'a\u0000',
        }),
        'description',
        'POST',
      ],
      [
        'a trigger patch',
        '/v1/triggers/fuzz-trigger',
        JSON.stringify({ tags: ['a\u0000'] }),
        'tags.0',
        'PATCH',
      ],
      [
        'manual run params',
        '/v1/triggers/fuzz-trigger/run',
        JSON.stringify({ params: { '\u0000': 1 } }),
        'params.\u0000',
        'POST',
      ],
      [
        'a finding note',
        '/v1/lead/findings/0123456789abcdef/resolve',
        JSON.stringify({ note: '\u0000' }),
        'note',
        'POST',
      ],
    ])('should answer 400 naming the field for NUL in %s', async (_name, target, body, path, method) => {
      const response = await post(target, body, method);
      expect(response.status).toBe(400);
      expect(errorOf(response).details).toContainEqual({ path, message: expect.stringMatching(/NUL/) });
    });

    // Found by a newcomer's attack run: twelve levels of `&lN [*prev ×9]` made the yaml library throw while
    // expanding the aliases, past the parse, and the API answered 500.
    const aliasBomb = [
      'a0: &l0 [x, x, x, x, x, x, x, x, x]',
      ...Array.from(
        { length: 11 },
        (_, i) => `a${i + 1}: &l${i + 1} [${Array.from({ length: 9 }, () => `*l${i}`).join(', ')}]`,
      ),
    ].join('\n');
    it.each([
      ['a supervisor policy', '/v1/policies', { kind: 'supervisor', source: aliasBomb }],
      ['a WriteGate policy', '/v1/policies', { kind: 'writegate', source: aliasBomb }],
      ['lead rules', '/v1/policies', { kind: 'lead-rules', source: aliasBomb }],
      ['a backtest', '/v1/policies/backtests', { source: aliasBomb, since: '1d' }],
    ])('should answer 400 for a YAML alias bomb in %s', async (_name, target, body) => {
      const response = await post(target, JSON.stringify(body));
      expect(response.status).toBe(400);
      expect(errorOf(response).message).toMatch(/alias/i);
    });

    it('should answer 400 naming the URL field for a URL that does not parse', async () => {
      const response = await post(
        '/v1/triggers',
        JSON.stringify({ event_name: 'bad-url', expression: '0 0 1 1 *', agent: { url: 'http://[' } }),
      );
      expect(response.status).toBe(400);
      expect(errorOf(response).details.map((d) => d.path)).toContain('agent.url');
    });

    it.each([
      ['year 0000', '0000-01-01T00:00:00Z', /year 0000/],
      ['an offset Postgres cannot store', '2024-01-01T00:00:00-23:59', /offset/],
    ])('should answer 400 naming ts for %s', async (_name, ts, message) => {
      const response = await post('/v1/events', JSON.stringify(event('ts-x', { ts })));
      expect(response.status).toBe(400);
      expect(errorOf(response).details).toContainEqual({
        path: 'ts',
        message: expect.stringMatching(message),
      });
    });

    // Found by the fuzz run: `Date.parse` takes the year -271821, Postgres does not, and the history query
    // answered 500 for a cursor holding it.
    it.each([
      ['a year Postgres cannot store', '-271821-04-20T00:00:00.000Z'],
      ['year 0000', '0000-01-01T00:00:00.000Z'],
      ['a date that is not one', 'yesterday'],
    ])('should answer 400 for a history cursor holding %s', async (_name, time) => {
      await post(
        '/v1/triggers',
        JSON.stringify({ event_name: 'cursor-fuzz', expression: '0 0 1 1 *', agent: { queue: 'q' } }),
      );
      const cursor = encodeCursor({ s: time, id: '00000000-0000-4000-8000-000000000000' });
      const response = await raw({
        method: 'GET',
        target: `/v1/triggers/cursor-fuzz/executions?cursor=${encodeURIComponent(cursor)}`,
        headers: jsonHeaders('/v1/triggers/cursor-fuzz/executions'),
      });
      expect(response.status).toBe(400);
      expect(errorOf(response).details.map((d) => d.path)).toContain('cursor');
    });

    it('should answer 400 for a payload nested ~3,000 levels, naming where it got too deep', async () => {
      const response = await post(
        '/v1/events',
        `{"event_id":"deep","task_id":"t","event_type":"X","payload":${nested(3000)}}`,
      );
      expect(response.status).toBe(400);
      const error = errorOf(response);
      expect(error.message).toMatch(/^invalid request body: payload(\.a)+: is nested deeper than 64 levels/);
      expect(error.details[0]!.path.split('.')).toHaveLength(MAX_JSON_DEPTH);
    });

    it('should take 64 levels and refuse 65, on every route that reads a body', async () => {
      // The body is level 1: `{ payload: <63 more> }` nests 64 deep.
      const at = (levels: number) =>
        `{"event_id":"d${levels}","task_id":"t","event_type":"X","payload":${nested(levels - 1, '{}')}}`;
      expect((await post('/v1/events', at(MAX_JSON_DEPTH - 1))).status).toBe(202);
      expect((await post('/v1/events', at(MAX_JSON_DEPTH))).status).toBe(400);
      expect(
        (await post('/v1/triggers/fuzz-trigger/run', `{"params":${nested(MAX_JSON_DEPTH, '{}')}}`)).status,
      ).toBe(400);
    });

    it('should still store a change set whose path holds NUL, as a WriteGate DENY', async () => {
      const body = submission({
        changesetId: 'nul-path',
        workspace: 'default',
        changes: [change.create('docs/a\u0000.md', 'x\n')],
      });
      const response = await post('/v1/changesets', JSON.stringify(body));
      expect(response.status).toBe(201);
      expect(JSON.parse(response.text)).toMatchObject({ status: 'denied' });
    });
  });

  describe('reserved task-id namespaces', () => {
    const writer = () => keys.get('events:write')!;

    it.each([
      ...RESERVED_TASK_ID_PREFIXES.map((prefix) => `${prefix}fuzz-cs`),
      'CHANGESET:fuzz-cs',
      'Trigger:fuzz-trigger',
    ])('should refuse events for task %s with 400 naming task_id', async (taskId) => {
      const response = await call(`${api.url}/v1/events`, {
        key: writer(),
        body: event(`r-${taskId}`, { task_id: taskId }),
      });
      expect(response.status).toBe(400);
      expect(response.body.error.details).toContainEqual({
        path: 'task_id',
        message: expect.stringMatching(/reserved for Warden's own audit trails/),
      });
    });

    it('should name the event in a batch', async () => {
      const response = await call(`${api.url}/v1/events`, {
        key: writer(),
        body: { events: [event('rb-1'), event('rb-2', { task_id: 'changeset:fuzz-cs' })] },
      });
      expect(response.status).toBe(400);
      expect(response.body.error.details.map((d: { path: string }) => d.path)).toEqual(['events.1.task_id']);
    });

    it('should leave the change set trail untouched', async () => {
      const before = await api.db
        .selectFrom('task_audits')
        .select('audit_id')
        .where('tenant_id', '=', TENANT)
        .where('task_id', '=', 'changeset:fuzz-cs')
        .execute();
      await call(`${api.url}/v1/events`, {
        key: writer(),
        body: event('r-trail', { task_id: 'changeset:fuzz-cs' }),
      });
      const inbox = await api.db
        .selectFrom('supervisor_inbox')
        .select('event_id')
        .where('tenant_id', '=', TENANT)
        .where('task_id', 'like', 'changeset:%')
        .execute();
      expect(inbox).toEqual([]);
      const after = await api.db
        .selectFrom('task_audits')
        .select('audit_id')
        .where('tenant_id', '=', TENANT)
        .where('task_id', '=', 'changeset:fuzz-cs')
        .execute();
      expect(after).toEqual(before);
    });

    it.each(['changesets-report', 'trigger-happy', 'lead-0123456789abcdef', 'my:changeset:1', 'jira:ABC-1'])(
      'should accept the benign task id %s',
      async (taskId) => {
        const response = await call(`${api.url}/v1/events`, {
          key: writer(),
          body: event(`ok-${taskId}`, { task_id: taskId }),
        });
        expect(response.status).toBe(202);
      },
    );
  });

  describe('an error nobody expected', () => {
    it('should answer 500 in the error shape without a stack trace or the message', () => {
      let status = 0;
      let sentBody: unknown;
      const res = {
        headersSent: false,
        hasHeader: () => false,
        setHeader: () => res,
        status: (s: number) => ((status = s), res),
        json: (b: unknown) => ((sentBody = b), res),
      };
      const boom = new Error('secret detail at /srv/app.js:1:1');
      errorMiddleware(createLogger({ service: 'test', level: 'silent' }))(
        boom,
        { method: 'GET', path: '/x' } as never,
        res as never,
        () => {},
      );
      expect(status).toBe(500);
      expect(sentBody).toEqual({
        error: { code: 'internal', message: 'internal error; the request was logged', details: [] },
      });
    });
  });
});
