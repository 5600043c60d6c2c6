/**
 * `pnpm bench:executor` — how long the executor takes to apply (and to roll back) a 200-file change set through
 * its full path, against the floor: the same files written with a plain write + rename.
 *
 * Each round: a fresh workspace of 140 files (~50 lines each), a change set of 200 changes (100 updates, 40
 * deletes, 60 creates in new directories) submitted through the real API and gated by the WriteGate, then
 * executed by the real executor — idempotency, workspace lock and fencing token, re-check of checksum, plan hash
 * and WriteGate with the disk, compare-and-swap, backups and journal in Postgres, fenced temp file + fsync +
 * rename, directory fsyncs, commit — with no verification commands. Then the same change set again on a fresh
 * copy, made to fail at its health check (a refused connection), and rolled back and checked byte for byte.
 * The floor writes the same 200 changes with `writeFile` + `rename` (and `unlink`) at the executor's write
 * concurrency, with no fsync, no checks, no database.
 *
 * A second floor, `durable_floor`, adds what durability costs on this disk with no database: each temp file
 * fsynced before its rename and each touched directory fsynced once — the least any crash-safe apply pays.
 *
 * Goal (issue 12): the apply's writes (`apply_writes_ms`, the `applying` step: fenced, journalled writes +
 * fsyncs) and the rollback each ≤ 250 ms and ≤ 5× the floor. The whole execution (`apply_ms`: validation,
 * backups, steps and audit, commit) is printed too. Medians of ROUNDS rounds. Self-contained: its own database, queue
 * prefix, temp directories and policy (the repository policy caps a change set at 50 files), all removed at the
 * end, even on failure or Ctrl-C. The last line is `RESULT executor apply_ms=… rollback_ms=… floor_ms=… ratio=… apply_writes_ms=…
 * writes_ratio=… rollback_ratio=… durable_floor_ms=…`.
 */
import { mkdir, mkdtemp, open, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { FileChange } from '@warden/domain';
import { call, startTestApi, type TestApi } from '../support/api.js';
import {
  change,
  startTestExecutor,
  submission,
  tempWorkspace,
  type TempWorkspace,
  type TestExecutor,
} from '../support/executor.js';
import { formatTable, median } from './support.js';

const ROUNDS = 5;
const WARMUP_ROUNDS = 1;
const UPDATES = 100;
const DELETES = 40;
const CREATES = 60;
const LINES = 50;
const WRITE_CONCURRENCY = 16;
const GOAL_MS = 250;
const GOAL_RATIO = 5;
const TENANT = 'bench';

const content = (name: string, version: number) =>
  Array.from(
    { length: LINES },
    (_, i) => `${name} v${version}: line ${i} of a generated document, about sixty characters`,
  ).join('\n') + '\n';

function baseline(): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < UPDATES + DELETES; i++) files[`docs/d${i % 10}/f${i}.md`] = content(`f${i}`, 1);
  return files;
}

function plannedChanges(): FileChange[] {
  const changes: FileChange[] = [];
  for (let i = 0; i < UPDATES; i++)
    changes.push(change.update(`docs/d${i % 10}/f${i}.md`, content(`f${i}`, 1), content(`f${i}`, 2)));
  for (let i = UPDATES; i < UPDATES + DELETES; i++)
    changes.push(change.delete(`docs/d${i % 10}/f${i}.md`, content(`f${i}`, 1)));
  for (let i = 0; i < CREATES; i++)
    changes.push(change.create(`docs/new/n${i % 6}/c${i}.md`, content(`c${i}`, 1)));
  return changes;
}

async function floorRun(root: string, changes: readonly FileChange[]): Promise<number> {
  const started = performance.now();
  await mkdir(join(root, 'docs/new'), { recursive: true });
  for (let d = 0; d < 6; d++) await mkdir(join(root, `docs/new/n${d}`), { recursive: true });
  let next = 0;
  const worker = async () => {
    while (next < changes.length) {
      const c = changes[next++]!;
      const target = join(root, c.path);
      if (c.operation === 'delete') await unlink(target);
      else {
        const temp = join(dirname(target), `.${next}.tmp`);
        await writeFile(temp, c.new_content!);
        await rename(temp, target);
      }
    }
  };
  await Promise.all(Array.from({ length: WRITE_CONCURRENCY }, worker));
  return performance.now() - started;
}

/** The floor with durability: temp file + fsync + rename, then one fsync per touched directory. */
async function durableFloorRun(root: string, changes: readonly FileChange[]): Promise<number> {
  const started = performance.now();
  const dirs = new Set<string>();
  await mkdir(join(root, 'docs/new'), { recursive: true });
  for (let d = 0; d < 6; d++) await mkdir(join(root, `docs/new/n${d}`), { recursive: true });
  let next = 0;
  const worker = async () => {
    while (next < changes.length) {
      const c = changes[next++]!;
      const target = join(root, c.path);
      dirs.add(dirname(target));
      if (c.operation === 'delete') await unlink(target);
      else {
        const temp = join(dirname(target), `.${next}.tmp`);
        const handle = await open(temp, 'wx');
        await handle.writeFile(c.new_content!);
        await handle.datasync();
        await handle.close();
        await rename(temp, target);
      }
    }
  };
  await Promise.all(Array.from({ length: WRITE_CONCURRENCY }, worker));
  await Promise.all(
    [...dirs].map(async (dir) => {
      const handle = await open(dir, 'r');
      await handle.sync();
      await handle.close();
    }),
  );
  return performance.now() - started;
}

interface RoundResult {
  applyTotalMs: number;
  applyPhaseMs: number;
  rollbackMs: number;
  rollbackTotalMs: number;
  floorMs: number;
  durableFloorMs: number;
  /** Where the apply's time went, between the executor's points (ms). */
  steps: Record<string, number>;
}

async function main(cleanup: Array<() => Promise<unknown>>): Promise<void> {
  const started = performance.now();
  const scratch = await mkdtemp(join(tmpdir(), 'warden-bench-exec-'));
  cleanup.push(() => rm(scratch, { recursive: true, force: true }));
  const policyFile = join(scratch, 'writegate.yaml');
  await writeFile(
    policyFile,
    [
      '# The repository policy caps a change set at 50 files and 5000 lines; this benchmark needs 200 files.',
      'constraints: { max_files_touched: 1000, max_patch_lines: 1000000 }',
      'risk: { large_change_lines: 1000000 }',
      '# No health checks needed at MEDIUM (the deletes): the apply runs no command at all.',
      'approval: { require_health_checks_from: CRITICAL }',
    ].join('\n') + '\n',
  );
  const api: TestApi = await startTestApi({ WRITEGATE_POLICY_FILE: policyFile, LOG_LEVEL: 'silent' });
  cleanup.push(() => api.stop());
  const key = await api.createKey(TENANT, ['changesets:write']);

  // One workspace root per round and purpose; the executor serves them all, by name.
  const workspaces: Record<string, TempWorkspace> = {};
  const total = WARMUP_ROUNDS + ROUNDS;
  for (let round = 0; round < total; round++) {
    for (const kind of ['apply', 'rollback'] as const) {
      const ws = await tempWorkspace(baseline(), `warden-bench-${kind}-${round}-`);
      cleanup.push(() => ws.remove());
      workspaces[`${kind}-${round}`] = ws;
    }
  }
  // When each point of an execution was reached: the phases between them are where a round's time goes.
  const reached = new Map<string, Array<[string, number]>>();
  const executor: TestExecutor = await startTestExecutor({
    databaseUrl: api.database.url,
    prefix: api.prefix,
    hooks: {
      at: (point, context) => {
        const marks = reached.get(context.changeset_id) ?? [];
        marks.push([point, performance.now()]);
        reached.set(context.changeset_id, marks);
      },
    },
    workspaces: Object.fromEntries(Object.entries(workspaces).map(([name, ws]) => [name, ws.root])),
    consume: false,
    env: {
      WRITEGATE_POLICY_FILE: policyFile,
      EXECUTOR_WRITE_CONCURRENCY: String(WRITE_CONCURRENCY),
      // The production default (the test helper's 5 s is for tests of expiry): a busy machine must not cost
      // the bench its lock half-way through a round.
      EXECUTOR_LOCK_TTL_MS: '30000',
      DB_POOL_SIZE: '8',
    },
  });
  cleanup.push(() => executor.stop());
  const runner = executor.service.runner()!;
  const changes = plannedChanges();
  console.log(
    `executor bench: ${changes.length} changes (${UPDATES} updates, ${DELETES} deletes, ${CREATES} creates, ~${LINES} lines each), ${WARMUP_ROUNDS} warm-up + ${ROUNDS} rounds`,
  );

  const results: RoundResult[] = [];
  for (let round = 0; round < total; round++) {
    // Apply: submitted through the API (ALLOW), executed to `completed`.
    const applyId = `bench-apply-${round}`;
    const applied = await call(`${api.url}/v1/changesets`, {
      key,
      body: submission({ changesetId: applyId, workspace: `apply-${round}`, changes }),
    });
    if (applied.body.verdict?.verdict !== 'ALLOW')
      throw new Error(
        `the bench change set was not allowed: ${JSON.stringify(applied.body.verdict ?? applied.body)}`,
      );
    let begun = performance.now();
    const outcome = await runner.execute({ tenant_id: TENANT, changeset_id: applyId });
    const applyTotalMs = performance.now() - begun;
    const phases: Record<string, number> = {};
    let previous: [string, number] = ['start', begun];
    for (const mark of [...(reached.get(applyId) ?? []), ['end', begun + applyTotalMs] as [string, number]]) {
      phases[`${previous[0]}→${mark[0]}`] = mark[1] - previous[1];
      previous = mark;
    }
    if (outcome.status !== 'done' || outcome.changeset_status !== 'completed')
      throw new Error(`apply round ${round} ended ${JSON.stringify(outcome)}`);
    const appliedRow = await api.db
      .selectFrom('changesets')
      .select('result')
      .where('changeset_id', '=', applyId)
      .executeTakeFirstOrThrow();
    const steps = phases;

    // Rollback: the same changes, applied, then a health check that cannot connect fails them.
    const rollbackId = `bench-rollback-${round}`;
    await call(`${api.url}/v1/changesets`, {
      key,
      body: submission({
        changesetId: rollbackId,
        workspace: `rollback-${round}`,
        changes,
        plan: {
          health_checks: [
            { type: 'http', name: 'unreachable', url: 'http://127.0.0.1:1/healthz', timeout_ms: 1000 },
          ],
        },
      }),
    });
    const before = await workspaces[`rollback-${round}`]!.snapshot();
    begun = performance.now();
    const rolled = await runner.execute({ tenant_id: TENANT, changeset_id: rollbackId });
    const rollbackTotalMs = performance.now() - begun;
    if (rolled.status !== 'done' || rolled.changeset_status !== 'rolled_back')
      throw new Error(`rollback round ${round} ended ${JSON.stringify(rolled)}`);
    if (JSON.stringify(await workspaces[`rollback-${round}`]!.snapshot()) !== JSON.stringify(before))
      throw new Error(`rollback round ${round} did not restore the workspace byte for byte`);
    const rolledRow = await api.db
      .selectFrom('changesets')
      .select('result')
      .where('changeset_id', '=', rollbackId)
      .executeTakeFirstOrThrow();

    // Floor: the same changes on a fresh copy, plain write + rename.
    const floorWs = await tempWorkspace(baseline(), `warden-bench-floor-${round}-`);
    const floorMs = await floorRun(floorWs.root, changes);
    await floorWs.remove();
    const durableWs = await tempWorkspace(baseline(), `warden-bench-durable-${round}-`);
    const durableFloorMs = await durableFloorRun(durableWs.root, changes);
    await durableWs.remove();

    const result: RoundResult = {
      applyTotalMs,
      applyPhaseMs: Number((appliedRow.result as { apply_ms?: number } | null)?.apply_ms ?? NaN),
      rollbackMs: Number((rolledRow.result as { rollback_ms?: number } | null)?.rollback_ms ?? NaN),
      rollbackTotalMs,
      floorMs,
      durableFloorMs,
      steps,
    };
    const label = round < WARMUP_ROUNDS ? `warm-up ${round + 1}` : `round ${round - WARMUP_ROUNDS + 1}`;
    console.log(
      `${label}: apply ${result.applyTotalMs.toFixed(0)} ms (writes ${result.applyPhaseMs} ms), rollback ${result.rollbackMs} ms (whole failed run ${result.rollbackTotalMs.toFixed(0)} ms), floor ${result.floorMs.toFixed(0)} ms, durable floor ${result.durableFloorMs.toFixed(0)} ms`,
    );
    if (round >= WARMUP_ROUNDS) results.push(result);
  }

  const m = (pick: (r: RoundResult) => number) => median(results.map(pick));
  const stepNames = [...new Set(results.flatMap((r) => Object.keys(r.steps)))];
  console.log(
    `apply by phase (median ms): ${stepNames.map((name) => `${name}=${m((r) => r.steps[name] ?? 0).toFixed(0)}`).join(' ')}`,
  );
  const applyMs = m((r) => r.applyTotalMs);
  const rollbackMs = m((r) => r.rollbackMs);
  const floorMs = m((r) => r.floorMs);
  const writesMs = m((r) => r.applyPhaseMs);
  const durableFloorMs = m((r) => r.durableFloorMs);
  console.log('');
  console.log(
    formatTable(
      ['measure', 'median ms', 'per round'],
      [
        [
          'apply + commit (whole execution)',
          applyMs.toFixed(0),
          results.map((r) => r.applyTotalMs.toFixed(0)).join(' / '),
        ],
        [
          '  of which fenced writes + fsyncs',
          m((r) => r.applyPhaseMs).toFixed(0),
          results.map((r) => String(r.applyPhaseMs)).join(' / '),
        ],
        [
          'rollback (restore + byte check)',
          rollbackMs.toFixed(0),
          results.map((r) => String(r.rollbackMs)).join(' / '),
        ],
        [
          '  whole failed execution',
          m((r) => r.rollbackTotalMs).toFixed(0),
          results.map((r) => r.rollbackTotalMs.toFixed(0)).join(' / '),
        ],
        [
          'floor (write + rename, no fsync)',
          floorMs.toFixed(0),
          results.map((r) => r.floorMs.toFixed(0)).join(' / '),
        ],
        [
          'durable floor (+ fsyncs, no database)',
          durableFloorMs.toFixed(0),
          results.map((r) => r.durableFloorMs.toFixed(0)).join(' / '),
        ],
      ],
    ),
  );
  console.log('');
  const goal = (ms: number) =>
    ms <= GOAL_MS && ms <= GOAL_RATIO * floorMs
      ? 'met'
      : `NOT met (${ms.toFixed(0)} ms, ${(ms / floorMs).toFixed(1)}x the floor)`;
  console.log(
    `goal writes <= ${GOAL_MS} ms and <= ${GOAL_RATIO}x the floor: ${goal(writesMs)}; goal rollback: ${goal(rollbackMs)}; the whole execution (not a goal): ${(applyMs / floorMs).toFixed(1)}x the floor`,
  );
  console.log(`total time ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(
    `RESULT executor apply_ms=${Math.round(applyMs)} rollback_ms=${Math.round(rollbackMs)} floor_ms=${Math.round(floorMs)} ratio=${(applyMs / floorMs).toFixed(2)} apply_writes_ms=${Math.round(writesMs)} writes_ratio=${(writesMs / floorMs).toFixed(2)} rollback_ratio=${(rollbackMs / floorMs).toFixed(2)} durable_floor_ms=${Math.round(durableFloorMs)}`,
  );
}

const cleanup: Array<() => Promise<unknown>> = [];
const runCleanup = async () => {
  // Last opened, first closed: the executor before the API and its database, directories last.
  while (cleanup.length > 0)
    await cleanup.pop()!().catch((error: unknown) => console.error('cleanup step failed:', error));
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: cleaning up`);
    void runCleanup().finally(() => process.exit(130));
  });
}
let exitCode = 0;
try {
  await main(cleanup);
} catch (error) {
  console.error('executor bench failed:', error);
  exitCode = 1;
} finally {
  await runCleanup();
}
process.exit(exitCode);
