/**
 * `npm run bench:console` — the console's inbox with 1,000 waiting items: 700 paused tasks with an open gate
 * (each with its decision and two findings) and 300 open critical/high findings, in one tenant. Measures
 * `GET /console/inbox` as a signed-in browser asks for it (the four reads, the render and the transfer, over
 * loopback), sequentially, after a warm-up; and, apart, the templating alone on the same items. Goal: p99 under
 * 300 ms. The last line is `RESULT console items=1000 p50_ms=… p99_ms=…`.
 *
 * Self-contained: its own database and queue prefix, removed at the end even on failure or Ctrl-C.
 * `BENCH_CONSOLE_ITEMS=<n>` changes the item count; `BENCH_CONSOLE_RUNS=<n>` the measured requests (100).
 */
import { createApiService, loadConfig } from '@warden/api';
import { sql } from 'kysely';
import { ensureTenant, insertApiKey, listWaitingItems, type Db } from '@warden/db';
import { displayPrefix, generateApiKey, hashApiKey } from '@warden/domain';
import { createTestDatabase, deleteQueuePrefix, testQueuePrefix, testServers } from '@warden/testing';
import { inboxPage } from '../../services/api/src/console/views.js';
import { CleanupStack, formatTable, percentile, runBench, type Janitor } from './support.js';

const ITEMS = Number(process.env.BENCH_CONSOLE_ITEMS ?? 1000);
const RUNS = Number(process.env.BENCH_CONSOLE_RUNS ?? 100);
const WARMUP = 10;
const TENANT = 'bench-console';
const GOAL_MS = 300;

/** 70 % gates (task, decision, gate), 30 % findings, generated in SQL. */
async function generateItems(db: Db, items: number): Promise<void> {
  const gates = Math.round(items * 0.7);
  const findings = items - gates;
  await sql`
    insert into tasks (tenant_id, task_id, status, metadata)
    select ${TENANT}, 'task-' || i, 'paused', '{}'::jsonb from generate_series(1, ${gates}) i`.execute(db);
  await sql`
    insert into decisions (decision_id, tenant_id, task_id, event_id, decision_type, reason, findings, actions,
                           policy, policy_version, created_at)
    select 'dec-' || i, ${TENANT}, 'task-' || i, 'evt-' || i, 'PAUSE',
           'paused after step: RISK_ERROR_RATE (MEDIUM), RISK_RESOURCE_USAGE (MEDIUM)',
           '[{"code":"RISK_ERROR_RATE","severity":"MEDIUM","message":"error rate 0.9"},
             {"code":"RISK_RESOURCE_USAGE","severity":"MEDIUM","message":"resource usage 0.95"}]'::jsonb,
           '[]'::jsonb, 'task_step_risk', '1', now() - (i || ' seconds')::interval
    from generate_series(1, ${gates}) i`.execute(db);
  await sql`
    insert into task_gates (tenant_id, gate_id, task_id, checkpoint, reason, state, decision_id, opened_at)
    select ${TENANT}, 'gate-' || i, 'task-' || i, 'open_plan',
           'paused after step: RISK_ERROR_RATE (MEDIUM), RISK_RESOURCE_USAGE (MEDIUM)', 'open', 'dec-' || i,
           now() - (i || ' seconds')::interval
    from generate_series(1, ${gates}) i`.execute(db);
  await sql`
    insert into lead_findings (tenant_id, fingerprint, code, severity, title, description, window_kind, dimensions,
                               first_seen_at, last_seen_at, evidence)
    select ${TENANT}, lpad(to_hex(i), 16, '0'), 'PAUSE_THEN_BLOCK', case when i % 2 = 0 then 'CRITICAL' else 'HIGH' end,
           'tasks paused then blocked: agent ' || i, 'description', '24h', '{}'::jsonb,
           now() - interval '1 day', now() - (i || ' seconds')::interval, '{}'::jsonb
    from generate_series(1, ${findings}) i`.execute(db);
}

async function main(cleanup: CleanupStack, janitor: Janitor): Promise<void> {
  const database = await createTestDatabase();
  const prefix = testQueuePrefix();
  janitor.watch({ databaseUrl: database.url, queuePrefix: prefix });
  cleanup.push('drop the database', () => database.drop());
  cleanup.push('delete the queue prefix', () => deleteQueuePrefix(prefix));

  await ensureTenant(database.db, TENANT);
  const key = generateApiKey();
  await insertApiKey(database.db, {
    tenantId: TENANT,
    name: 'bench',
    owner: 'Bench Person',
    keyHash: hashApiKey(key),
    keyPrefix: displayPrefix(key),
    scopes: ['tasks:read', 'tasks:approve', 'lead:read'],
  });
  const generating = performance.now();
  await generateItems(database.db, ITEMS);
  await sql`analyze`.execute(database.db);
  console.log(
    `generated ${ITEMS} waiting items in ${((performance.now() - generating) / 1000).toFixed(1)} s`,
  );

  const api = createApiService(
    loadConfig({
      DATABASE_URL: database.url,
      REDIS_URL: testServers.redisUrl,
      QUEUE_PREFIX: prefix,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
    }),
  );
  await api.start();
  cleanup.push('stop the api', () => api.stop());
  const url = `http://127.0.0.1:${api.port()}`;

  // Sign in as a browser does: the sign-in page's token and pre-session cookie, then the form.
  const signInPage = await fetch(`${url}/console/sign-in`);
  const pre = signInPage.headers.getSetCookie()[0]!.split(';')[0]!;
  const token = /name="_csrf" value="([^"]+)"/.exec(await signInPage.text())![1]!;
  const signedIn = await fetch(`${url}/console/sign-in`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: pre },
    body: new URLSearchParams({ _csrf: token, api_key: key }).toString(),
  });
  const cookie = signedIn.headers
    .getSetCookie()
    .find((c) => c.startsWith('warden_console='))!
    .split(';')[0]!;

  const request = async () => {
    const started = performance.now();
    const res = await fetch(`${url}/console/inbox`, { headers: { cookie, accept: 'text/html' } });
    const body = await res.text();
    const ms = performance.now() - started;
    if (res.status !== 200) throw new Error(`inbox answered ${res.status}`);
    return { ms, bytes: body.length, items: (body.match(/class="item"/g) ?? []).length };
  };
  for (let i = 0; i < WARMUP; i++) await request();
  const requests: number[] = [];
  let last = { bytes: 0, items: 0 };
  for (let i = 0; i < RUNS; i++) {
    const r = await request();
    requests.push(r.ms);
    last = r;
  }
  requests.sort((a, b) => a - b);
  if (last.items !== ITEMS) throw new Error(`the inbox showed ${last.items} items, not ${ITEMS}`);

  // The templating alone, on the same items read once.
  const items = await listWaitingItems(database.db, TENANT);
  const renders: number[] = [];
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const started = performance.now();
    inboxPage({ title: '', who: { owner: 'Bench Person', tenantId: TENANT }, csrf: 'x' }, items);
    if (i >= WARMUP) renders.push(performance.now() - started);
  }
  renders.sort((a, b) => a - b);

  const p50 = percentile(requests, 50);
  const p99 = percentile(requests, 99);
  console.log(
    formatTable(
      ['measure', 'runs', 'p50 ms', 'p99 ms', 'max ms'],
      [
        ['GET /console/inbox', String(RUNS), p50.toFixed(1), p99.toFixed(1), requests.at(-1)!.toFixed(1)],
        [
          'render only',
          String(RUNS),
          percentile(renders, 50).toFixed(1),
          percentile(renders, 99).toFixed(1),
          renders.at(-1)!.toFixed(1),
        ],
      ],
    ),
  );
  console.log(`page: ${last.items} items, ${(last.bytes / 1024).toFixed(0)} KiB of HTML`);
  console.log(`goal p99 < ${GOAL_MS} ms: ${p99 < GOAL_MS ? 'met' : 'NOT met'}`);
  console.log(`RESULT console items=${ITEMS} p50_ms=${p50.toFixed(1)} p99_ms=${p99.toFixed(1)}`);
}

await runBench('console', main);
