/**
 * `npx tsx tests/bench/cli.bench.ts` — how long a `warden` command takes from the production build
 * (`node packages/cli/dist/main.js …`), against how long Node takes to do nothing (`node -e 0`) in the same run
 * (goal: each command < 0.5 s; README, "CLI").
 *
 * Timed, each BENCH_CLI_RUNS times, the commands taking turns so they all see the same machine, median
 * reported: `node -e 0` (the floor), `warden --help`, `warden changesets list --help` and `warden keys list
 * --help` (loading one command's modules), and a whole `warden preflight` against the local Postgres and Redis
 * (a migrated database and a queue prefix of its own, removed at the end), with the time its checks took
 * (`duration_ms` of its report: Postgres, Redis, the sandbox probes) to tell start-up from work. Also `--help` once from the
 * TypeScript sources through tsx, as `npm run warden` ran it before the build was used. Builds the CLI first
 * when its build is older than its sources (scripts/build.mjs --if-stale).
 *
 * The last line is `RESULT cli node_ms=… help_ms=… changesets_help_ms=… keys_help_ms=… preflight_ms=…
 * preflight_checks_ms=… tsx_help_ms=…`.
 * Environment: BENCH_CLI_RUNS (5).
 */
import { spawnSync } from 'node:child_process';
import { createTestDatabase, deleteQueuePrefix, testQueuePrefix, testServers } from '@warden/testing';
import { buildProduction, repoRoot } from '../support/service-process.js';
import { formatTable, median } from './support.js';

const RUNS = Number(process.env.BENCH_CLI_RUNS ?? 5);
const CLI = 'packages/cli/dist/main.js';

/** What `warden preflight --json` last printed: its `duration_ms` is the checks' own time. */
let lastStdout = '';

/** Wall time of one process, in ms; throws when it exits other than `expectedCode`. */
function timed(args: string[], env: NodeJS.ProcessEnv = process.env, expectedCode = 0): number {
  const started = performance.now();
  const result = spawnSync(process.execPath, args, { cwd: repoRoot, env, encoding: 'utf8' });
  const elapsed = performance.now() - started;
  if (result.status !== expectedCode)
    throw new Error(`${args.join(' ')} exited ${result.status}:\n${result.stdout}${result.stderr}`);
  lastStdout = result.stdout;
  return elapsed;
}

buildProduction(['packages/cli']);
const database = await createTestDatabase();
const prefix = testQueuePrefix();
try {
  const env = {
    ...process.env,
    DATABASE_URL: database.url,
    REDIS_URL: testServers.redisUrl,
    QUEUE_PREFIX: prefix,
  };
  const cases: Record<string, () => number> = {
    node: () => timed(['-e', '0']),
    help: () => timed([CLI, '--help']),
    changesets_help: () => timed([CLI, 'changesets', 'list', '--help']),
    keys_help: () => timed([CLI, 'keys', 'list', '--help']),
    // Its sandbox check may warn (no bubblewrap here); a warning does not fail preflight.
    preflight: () => timed([CLI, 'preflight', '--json'], env),
  };
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
  const checkMs: number[] = [];
  for (let run = 0; run < RUNS; run++)
    for (const [name, measure] of Object.entries(cases)) {
      samples[name]!.push(measure());
      if (name === 'preflight') checkMs.push((JSON.parse(lastStdout) as { duration_ms: number }).duration_ms);
    }
  const tsxHelp = timed(['--import', 'tsx', 'packages/cli/src/main.ts', '--help']);

  const medians = Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
  console.log(
    formatTable(
      ['command', 'median ms', 'over node -e 0', 'min ms', 'max ms'],
      [
        ...Object.entries(samples).map(([name, values]) => [
          name,
          medians[name]!.toFixed(0),
          name === 'node' ? '-' : (medians[name]! - medians.node!).toFixed(0),
          Math.min(...values).toFixed(0),
          Math.max(...values).toFixed(0),
        ]),
        [
          'preflight checks alone',
          median(checkMs).toFixed(0),
          '-',
          Math.min(...checkMs),
          Math.max(...checkMs),
        ],
        ['tsx help (once)', tsxHelp.toFixed(0), (tsxHelp - medians.node!).toFixed(0), '-', '-'],
      ],
    ),
  );
  console.log(
    `RESULT cli node_ms=${medians.node!.toFixed(0)} help_ms=${medians.help!.toFixed(0)} ` +
      `changesets_help_ms=${medians.changesets_help!.toFixed(0)} keys_help_ms=${medians.keys_help!.toFixed(0)} ` +
      `preflight_ms=${medians.preflight!.toFixed(0)} preflight_checks_ms=${median(checkMs).toFixed(0)} tsx_help_ms=${tsxHelp.toFixed(0)} runs=${RUNS}`,
  );
} finally {
  await database.drop();
  await deleteQueuePrefix(prefix);
}
