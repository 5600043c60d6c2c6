/**
 * `pnpm bench:lead` — a 7d lead scan over 1,000,000 decision audit rows spread over 7 days (generated with
 * SQL), measured as an operator runs it: `warden lead scan --window 7d` as its own process, its wall time and
 * its peak RSS (VmHWM from /proc); in the same run, the floor — one `SELECT count(*) … GROUP BY event_type`
 * over the same rows. Goal: scan ≤ 3× the floor, peak RSS ≤ 100 MB. The CLI runs from the production build
 * (`node packages/cli/dist/main.js`, what the image runs; built first when older than its sources), not
 * through tsx, which alone adds ~40 MB of TypeScript loader to any process.
 *
 * The rows look like the supervisor's: ~97 % plain ALLOWs, 1.5 % pauses with two MEDIUM risks, 0.8 % blocks
 * over eight finding codes, 0.5 % retries, and a few tasks the rules should catch (pause-then-block churn,
 * retry-then-block, monitor-mode ALLOWs of a redline), so every rule reads real candidates and the first scan
 * writes findings and follow-up tasks; the later scans find them again (the dedupe path).
 *
 * Self-contained: its own database and queue prefix, removed at the end even on failure or Ctrl-C.
 * `BENCH_LEAD_ROWS=<n>` changes the row count (for a quick try).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import type { Db } from '@warden/db';
import type { LeadScanReport } from '@warden/domain';
import { createTestDatabase, deleteQueuePrefix, testQueuePrefix, testServers } from '@warden/testing';
import { buildProduction } from '../support/service-process.js';
import { CleanupStack, formatTable, median, runBench, type Janitor } from './support.js';

const ROWS = Number(process.env.BENCH_LEAD_ROWS ?? 1_000_000);
const SCAN_RUNS = 3;
const FLOOR_RUNS = 3;
const TENANT = 'bench';
const GOAL_RATIO = 3;
const GOAL_RSS_MB = 100;
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = ['packages/cli/dist/main.js'];

/**
 * Inserts `count` decision audit rows (ids `from`…) spread evenly over the 7 days before `end`: ten decisions
 * per task, the task's kind chosen by its number. Chain columns hold placeholders (position = row number):
 * the scan never reads them, and hashing a million rows would measure the generator, not the scan.
 */
async function generateRows(db: Db, from: number, count: number, total: number, end: Date): Promise<void> {
  await sql`
    with s as (
      select i, (i - 1) / 10 as t, (i - 1) % 10 as p,
             ${end}::timestamptz - interval '7 days' + (i - 1) * (interval '7 days' / ${total}) + interval '1 second' as ts
        from generate_series(${from}::int, ${from + count - 1}::int) as i
    ), k as (
      select s.*, (hashtext(i::text) & 2147483647) % 1000 as h,
             case
               when t % 10000 = 17 and p in (2, 4) then 'PAUSE'
               when t % 10000 = 17 and p = 9 then 'BLOCK'
               when t % 10000 = 42 and p = 3 then 'RETRY'
               when t % 10000 = 42 and p = 7 then 'BLOCK'
               when t % 20000 = 99 and p = 1 then 'ALLOW_HIGH'
               when t % 1000 between 700 and 849 and p = 5 then 'PAUSE'
               when t % 1000 between 850 and 929 and p = 0 then 'BLOCK'
               when t % 1000 between 930 and 979 and p = 3 then 'RETRY'
               else 'ALLOW'
             end as dt
        from s
    ), f as (
      select k.*,
             case dt
               when 'PAUSE' then jsonb_build_array(
                 jsonb_build_object('finding_id', 'dec-' || i || '/1', 'code', 'RISK_ERROR_RATE', 'kind', 'RISK', 'severity', 'MEDIUM', 'description', 'error rate 0.9 is above 0.3', 'evidence', jsonb_build_array(jsonb_build_object('error_rate', 0.9, 'threshold', 0.3))),
                 jsonb_build_object('finding_id', 'dec-' || i || '/2', 'code', 'RISK_RESOURCE_USAGE', 'kind', 'RISK', 'severity', 'MEDIUM', 'description', 'resource usage 0.95 is above 0.8', 'evidence', jsonb_build_array(jsonb_build_object('resource_usage', 0.95, 'threshold', 0.8))))
               when 'BLOCK' then jsonb_build_array(jsonb_build_object(
                 'finding_id', 'dec-' || i || '/1',
                 'code', (array['REDLINE_FORBIDDEN_COMMAND','REDLINE_FORBIDDEN_PATH','REDLINE_UNDECLARED_NETWORK','REDLINE_UNDECLARED_FILE_WRITE','REDLINE_MISSING_REQUIRED_FIELD','CONFLICT_EXCLUSIVE_RESOURCE','FAILURE_PERMISSION_DENIED','FAILURE_QUOTA_EXCEEDED'])[1 + h % 8],
                 'kind', case when h % 8 < 5 then 'REDLINE' when h % 8 = 5 then 'CONFLICT' else 'FAILURE' end,
                 'severity', 'HIGH', 'description', 'forbidden command: recursive delete of /', 'evidence', jsonb_build_array(jsonb_build_object('command_line', 'rm -rf /'))))
               when 'RETRY' then jsonb_build_array(jsonb_build_object('finding_id', 'dec-' || i || '/1', 'code', 'FAILURE_NETWORK_TIMEOUT', 'kind', 'FAILURE', 'severity', 'HIGH', 'description', 'task failed: network_timeout', 'evidence', jsonb_build_array(jsonb_build_object('error_type', 'network_timeout', 'retryable', true))))
               when 'ALLOW_HIGH' then jsonb_build_array(jsonb_build_object('finding_id', 'dec-' || i || '/1', 'code', 'REDLINE_FORBIDDEN_COMMAND', 'kind', 'REDLINE', 'severity', 'HIGH', 'description', 'forbidden command: privilege escalation with sudo', 'evidence', jsonb_build_array(jsonb_build_object('command_line', 'sudo ls'))))
               else '[]'::jsonb
             end as findings
        from k
    )
    insert into task_audits (tenant_id, task_id, event_type, level, decision_id, event_id, source_event_ts, processed_at, payload, created_at,
                             chain_seq, prev_hash, row_hash, hash_version)
    select ${TENANT}, 'task-' || t,
           case dt when 'PAUSE' then 'SUPERVISOR_PAUSED' when 'BLOCK' then 'SUPERVISOR_BLOCKED' when 'RETRY' then 'SUPERVISOR_RETRY_RECOMMENDED' else 'SUPERVISOR_ALLOWED' end,
           case dt when 'PAUSE' then 'warn' when 'BLOCK' then 'warn' else 'info' end,
           'dec-' || i, 'evt-' || i, ts, ts + (20 + h % 200) * interval '1 millisecond',
           jsonb_build_object(
             'decision_type', case dt when 'ALLOW_HIGH' then 'ALLOW' else dt end,
             'reason', case dt when 'ALLOW' then 'step passed' else 'generated ' || dt end,
             'findings', findings,
             'actions', '[{"action_type":"write_audit","target":"task_audits","params":{}}]'::jsonb,
             'policy', 'task_step_risk', 'policy_version', '1+1', 'event_id', 'evt-' || i, 'event_type', 'TASK_STEP_COMPLETED', 'source', 'queue',
             'enforcement', case dt when 'ALLOW_HIGH' then 'monitor' else 'enforce' end)
           || case dt when 'ALLOW_HIGH' then '{"would_have":"BLOCK"}'::jsonb else '{}'::jsonb end,
           ts + (20 + h % 200) * interval '1 millisecond',
           i, 'bench', 'bench', 2
      from f`.execute(db);
}

/** Peak RSS (VmHWM) of a process in MB, read from /proc; undefined once it has gone. */
function peakRssMb(pid: number): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

interface ProcessRun {
  code: number | null;
  stdout: string;
  stderr: string;
  wallSeconds: number;
  peakRssMb: number;
}

/** Runs `warden …` and samples its peak RSS every 10 ms until it exits (VmHWM only grows, so the last sample is the peak). */
function runWarden(args: string[], env: Record<string, string>): Promise<ProcessRun> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, peakRssMb(child.pid!) ?? 0);
    }, 10);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      // The report is printed after the scan: the last moment the process certainly still exists.
      peak = Math.max(peak, peakRssMb(child.pid!) ?? 0);
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (error) => {
      clearInterval(sampler);
      reject(error);
    });
    child.on('close', (code) => {
      clearInterval(sampler);
      resolve({ code, stdout, stderr, wallSeconds: (performance.now() - started) / 1000, peakRssMb: peak });
    });
  });
}

/** The bench tenant's report in `warden lead scan --json` output (one object, reports under `tenants`). */
function tenantReport(stdout: string): LeadScanReport {
  const report = (JSON.parse(stdout) as { tenants: Record<string, LeadScanReport> }).tenants[TENANT];
  if (!report)
    throw new Error(`warden lead scan --json has no report for ${TENANT}: ${stdout.slice(0, 200)}`);
  return report;
}

async function main(cleanup: CleanupStack, janitor: Janitor): Promise<void> {
  const benchStarted = performance.now();
  console.log('building the CLI (npm run build -- --if-stale packages/cli)…');
  buildProduction(['packages/cli']);
  const database = await createTestDatabase();
  janitor.watch({ databaseUrl: database.url });
  cleanup.push('drop the bench database', () => database.drop());
  const prefix = testQueuePrefix();
  janitor.watch({ queuePrefix: prefix });
  cleanup.push('delete the bench queue keys', () => deleteQueuePrefix(prefix));
  const { db } = database;

  const end = new Date();
  const chunk = 200_000;
  const generating = performance.now();
  for (let from = 1; from <= ROWS; from += chunk) {
    const count = Math.min(chunk, ROWS - from + 1);
    await generateRows(db, from, count, ROWS, end);
    process.stderr.write(`generated ${from + count - 1}/${ROWS} audit rows\n`);
  }
  // The generated rows take positions 1…ROWS of the tenant's audit chain (their hashes are placeholders: the
  // bench measures the miner, not the chain); the head says so, so the scan's own audit rows append after them.
  await sql`insert into audit_chain_heads (tenant_id, chain_seq, row_hash) values (${TENANT}, ${ROWS}, 'bench')`.execute(
    db,
  );
  // What autovacuum does to a table that stopped growing: statistics, and the visibility map index-only scans need.
  await sql`vacuum (analyze) task_audits`.execute(db);
  const generateSeconds = (performance.now() - generating) / 1000;
  const size = await sql<{
    size: string;
  }>`select pg_size_pretty(pg_total_relation_size('task_audits')) as size`.execute(db);

  const env = {
    DATABASE_URL: database.url,
    REDIS_URL: testServers.redisUrl,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'silent',
  };
  const idle = await runWarden(['lead', 'scan', '--help'], env);

  // The floor: the same rows, counted by type in one statement (what any scan must at least read).
  const floorSeconds: number[] = [];
  for (let run = 0; run < FLOOR_RUNS; run++) {
    const now = new Date();
    const started = performance.now();
    await sql`select event_type, count(*) from task_audits
               where tenant_id = ${TENANT} and decision_id is not null
                 and source_event_ts >= ${new Date(now.getTime() - 7 * 86_400_000)} and source_event_ts < ${now}
               group by event_type`.execute(db);
    floorSeconds.push((performance.now() - started) / 1000);
  }

  const scans: Array<{ run: ProcessRun; report: LeadScanReport; scanSeconds: number }> = [];
  for (let run = 0; run < SCAN_RUNS; run++) {
    const result = await runWarden(['lead', 'scan', '--window', '7d', '--tenant', TENANT, '--json'], env);
    if (result.code !== 0) throw new Error(`warden lead scan exited ${result.code}: ${result.stderr.trim()}`);
    const report = tenantReport(result.stdout);
    const scanSeconds = (Date.parse(report.stats.completed_at!) - Date.parse(report.stats.started_at)) / 1000;
    scans.push({ run: result, report, scanSeconds });
    process.stderr.write(
      `scan ${run + 1}/${SCAN_RUNS}: ${scanSeconds.toFixed(2)} s, peak RSS ${result.peakRssMb.toFixed(0)} MB\n`,
    );
  }

  // The same scan with V8's young generation kept small: most of an idle CLI's RSS is the runtime, not the scan.
  const lean = await runWarden(['lead', 'scan', '--window', '7d', '--tenant', TENANT, '--json'], {
    ...env,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-semi-space-size=1`.trim(),
  });
  if (lean.code !== 0) throw new Error(`warden lead scan (lean) exited ${lean.code}: ${lean.stderr.trim()}`);
  const leanReport = tenantReport(lean.stdout);
  const leanIdle = await runWarden(['lead', 'scan', '--help'], {
    ...env,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-semi-space-size=1`.trim(),
  });

  const rows = scans.map(({ run, report, scanSeconds }, i) => [
    `scan ${i + 1}`,
    report.stats.decisions_scanned,
    report.stats.raw_findings,
    report.stats.new_findings,
    report.tasks_created,
    scanSeconds.toFixed(2),
    run.wallSeconds.toFixed(2),
    run.peakRssMb.toFixed(0),
  ]);
  rows.push([
    'scan, semi-space 1 MB',
    leanReport.stats.decisions_scanned,
    leanReport.stats.raw_findings,
    leanReport.stats.new_findings,
    leanReport.tasks_created,
    ((Date.parse(leanReport.stats.completed_at!) - Date.parse(leanReport.stats.started_at)) / 1000).toFixed(
      2,
    ),
    lean.wallSeconds.toFixed(2),
    lean.peakRssMb.toFixed(0),
  ]);
  console.log('');
  console.log(
    `lead bench: ${ROWS} audit rows over 7 days (${size.rows[0]!.size} with indexes, generated in ${generateSeconds.toFixed(0)} s), tenant "${TENANT}", window 7d`,
  );
  console.log('');
  console.log(
    formatTable(['run', 'decisions', 'raw', 'new', 'tasks', 'scan s', 'process s', 'peak RSS MB'], rows),
  );
  console.log('');
  console.log(
    `floor (count(*) … group by event_type over the same rows): ${floorSeconds.map((s) => s.toFixed(3)).join(', ')} s`,
  );
  console.log(
    `idle CLI process (lead scan --help, same loader): peak RSS ${idle.peakRssMb.toFixed(0)} MB; with --max-semi-space-size=1: ${leanIdle.peakRssMb.toFixed(0)} MB`,
  );
  console.log(
    'scan s: the scan itself (report started_at → completed_at: lock, read, rules, store, follow-ups);',
  );
  console.log('process s: the whole `warden lead scan` process (the production build), start-up included.');
  console.log(
    'scan 1 creates the findings and tasks; the later scans find them again (dedupe). RESULT: median scan s, median floor, largest peak RSS of scans 1-3 (node defaults).',
  );

  const scanSeconds = median(scans.map((s) => s.scanSeconds));
  const floor = median(floorSeconds);
  const rss = Math.max(...scans.map((s) => s.run.peakRssMb));
  const ratio = scanSeconds / floor;
  console.log(`total time ${((performance.now() - benchStarted) / 1000).toFixed(1)} s`);
  console.log(
    `goal scan <= ${GOAL_RATIO}x the floor: ${ratio <= GOAL_RATIO ? 'met' : 'NOT met'} (${ratio.toFixed(1)}x, ${scanSeconds.toFixed(2)} s); goal RSS <= ${GOAL_RSS_MB} MB: ${rss <= GOAL_RSS_MB ? 'met' : 'NOT met'} (${rss.toFixed(0)} MB, of which ${idle.peakRssMb.toFixed(0)} MB an idle CLI)`,
  );
  console.log(
    `RESULT lead rows=${ROWS} scan_s=${scanSeconds.toFixed(2)} floor_s=${floor.toFixed(3)} ratio=${ratio.toFixed(1)} rss_mb=${rss.toFixed(0)}`,
  );
}

await runBench('lead', main);
