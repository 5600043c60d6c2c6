/**
 * `pnpm bench:backtest` — a backtest of a changed supervisor policy (one more forbidden command) over
 * 1,000,000 archived events (generated with SQL: tasks of one TASK_CREATED and nine TASK_STEP_COMPLETED
 * events, 1 % of them running the newly forbidden command), replayed in per-task order exactly as
 * `warden policy test --since` does; in the same run, the floor — reading the same rows in the same order
 * through the same reader and doing nothing with them. Goal: ≥ 20,000 events/s, within 3× the floor,
 * RSS ≤ 200 MB (peak of this process, VmHWM).
 *
 * Self-contained: its own database, dropped at the end. `BENCH_BACKTEST_EVENTS=<n>` changes the event count.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { readArchivedTasks, replayArchive, rotateArchivePartitions } from '@warden/db';
import { Backtest, builtInPolicies, parsePolicyYaml, SupervisorPolicyFileSchema } from '@warden/domain';
import { createTestDatabase, ensureTemplateDatabase } from '@warden/testing';

const EVENTS = Number(process.env.BENCH_BACKTEST_EVENTS ?? 1_000_000);
const GOAL_EPS = 20_000;
const GOAL_RATIO = 3;
const GOAL_RSS_MB = 200;
const POLICY_FILE = fileURLToPath(new URL('../../infra/policies/supervisor.yaml', import.meta.url));

function peakRssMb(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) / 1024 : process.memoryUsage().rss / 1024 / 1024;
}

async function main(): Promise<void> {
  await ensureTemplateDatabase();
  const baseRss = process.memoryUsage().rss / 1024 / 1024;
  const database = await createTestDatabase();
  try {
    const { db } = database;
    const now = new Date();
    await rotateArchivePartitions(db, { now, retentionDays: 30, daysAhead: 1 });
    const generating = performance.now();
    await sql`
      insert into event_archive (tenant_id, event_id, task_id, event_type, inbox_id, source, event_ts, received_at,
                                 payload, task_context, running_tasks, decision_id, decision_type, policy,
                                 policy_version, finding_codes, decided_at)
      select 'bench', 'e' || g, 't' || (g / 10),
             case when g % 10 = 0 then 'TASK_CREATED' else 'TASK_STEP_COMPLETED' end,
             g, 'queue', now(), now(),
             case when g % 10 = 0
                  then jsonb_build_object('agent_spec', '{"name":"a","capabilities":[]}'::jsonb,
                         'command_spec', jsonb_build_object('name', 'c', 'command',
                           case when g % 1000 = 0 then 'echo hi' else 'ls -la /tmp' end))
                  else '{"risk_indicators":{"error_rate":0.1}}'::jsonb end,
             case when g % 10 = 0 then '{"status":null,"metadata":{},"retry_count":0}'::jsonb
                  else '{"status":"verifying","metadata":{},"retry_count":0}'::jsonb end,
             '[]'::jsonb, 'd' || g, 'ALLOW', 'p', '2+1', '{}', now() - interval '1 minute'
        from generate_series(0, ${EVENTS - 1}::int) g`.execute(db);
    await sql`analyze event_archive`.execute(db);
    const generatedS = (performance.now() - generating) / 1000;
    const since = new Date(now.getTime() - 3_600_000);

    // The floor: the same rows, the same order, the same reader; nothing decided.
    const floorStarted = performance.now();
    let floorEvents = 0;
    await readArchivedTasks(db, { since }, (task) => {
      floorEvents += task.length;
    });
    const floorS = (performance.now() - floorStarted) / 1000;

    const source = readFileSync(POLICY_FILE, 'utf8').replace(
      '  forbidden_commands:\n',
      '  forbidden_commands:\n    - description: echo (bench)\n      programs: [echo]\n',
    );
    const candidate = parsePolicyYaml(source, SupervisorPolicyFileSchema, 'candidate');
    const backtest = new Backtest(candidate, builtInPolicies());
    const progress = await replayArchive(db, { since }, backtest);
    const report = backtest.report();
    const eps = progress.events / (progress.elapsedMs / 1000);
    const floorEps = floorEvents / floorS;
    const ratio = floorEps / eps;
    const rss = peakRssMb();

    console.log(
      `generated ${EVENTS} archived events in ${generatedS.toFixed(1)} s; RSS at start ${baseRss.toFixed(0)} MB`,
    );
    console.log(
      `floor: read ${floorEvents} events in ${floorS.toFixed(2)} s; backtest: ${progress.events} events of ${progress.tasks} tasks in ${(progress.elapsedMs / 1000).toFixed(2)} s, ${report.changed} changed`,
    );
    for (const cell of report.matrix) console.log(`  ${cell.recorded} → ${cell.candidate}: ${cell.count}`);
    console.log(
      `goals: eps ≥ ${GOAL_EPS} ${eps >= GOAL_EPS ? 'met' : 'MISSED'}; ratio ≤ ${GOAL_RATIO} ${ratio <= GOAL_RATIO ? 'met' : 'MISSED'}; rss ≤ ${GOAL_RSS_MB} MB ${rss <= GOAL_RSS_MB ? 'met' : 'MISSED'}`,
    );
    console.log(
      `RESULT backtest events=${progress.events} eps=${Math.round(eps)} floor_eps=${Math.round(floorEps)} ratio=${ratio.toFixed(2)} rss_mb=${rss.toFixed(0)}`,
    );
  } finally {
    await database.drop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
