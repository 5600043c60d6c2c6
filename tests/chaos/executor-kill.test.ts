/**
 * The executor's crash acceptance test (docs/executor.md, "a crash mid-apply is recovered on restart"): the executor runs
 * as deployed (`node --import tsx services/executor/src/main.ts`, configured through env) and is killed with
 * SIGKILL while it applies a 200-file change set — and once while verification runs. After each restart the
 * workspace must be either fully applied and verified, or byte-identical to before; the change set's status,
 * steps and audit trail must say which, and the tenant's audit hash chain must still verify.
 *
 * Writes are slowed (EXECUTOR_FAULT_WRITE_DELAY_MS) so the apply lasts seconds and the kill lands inside it.
 * Kill times are random; a failure prints the seed and `CHAOS_SEED=<seed>` replays the same plan.
 */
import { randomInt } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '@warden/db';
import type { FileChange } from '@warden/domain';
import { call, startTestApi, type TestApi } from '../support/api.js';
import {
  change,
  TEST_VERIFICATIONS,
  submission,
  tempWorkspace,
  waitFor,
  waitForChangeSet,
  type TempWorkspace,
} from '../support/executor.js';
import { ExecutorProcess } from '../support/executor-process.js';

const SEED = process.env.CHAOS_SEED === undefined ? randomInt(2 ** 31) : Number(process.env.CHAOS_SEED);
const TENANT = 'chaos';
const FILES = 200;
/** Per rename, with two at a time: 200 files take about two seconds to apply. */
const WRITE_DELAY_MS = 20;
const ROUNDS = 3;

function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const body = (name: string, version: number) =>
  Array.from({ length: 50 }, (_, i) => `${name} v${version} line ${i}`).join('\n') + '\n';

interface Round {
  id: string;
  killAt: 'applying' | 'verifying';
  killDelayMs: number;
  /** Files already in their new state when the process died (proof the kill landed mid-apply). */
  newAtKill: number;
  oldAtKill: number;
  status: string;
  identicalToBefore: boolean;
  fullyApplied: boolean;
}

describe('executor killed with SIGKILL during a change set', () => {
  const random = createRandom(SEED);
  let api: TestApi;
  let ws: TempWorkspace;
  let policyDir: string;
  let key: string;
  let executor: ExecutorProcess | undefined;
  let env: Record<string, string>;
  const rounds: Round[] = [];

  beforeAll(async () => {
    console.log(`executor chaos: seed ${SEED} (replay with CHAOS_SEED=${SEED})`);
    // The repository policy allows at most 50 files per change set; this suite needs 200.
    policyDir = await mkdtemp(join(tmpdir(), 'warden-chaos-policy-'));
    const policyFile = join(policyDir, 'writegate.yaml');
    await writeFile(
      policyFile,
      [
        'constraints:\n  max_files_touched: 500\n  max_patch_lines: 100000\nrisk:\n  large_change_lines: 100000\n',
        // The only commands the executor may run: change sets name them.
        `verifications: ${JSON.stringify({ pass: TEST_VERIFICATIONS.pass, 'takes-4s': TEST_VERIFICATIONS['takes-4s'] })}\n`,
      ].join(''),
    );
    api = await startTestApi({ WRITEGATE_POLICY_FILE: policyFile });
    key = await api.createKey(TENANT, ['changesets:write']);
    const files: Record<string, string> = {};
    for (let i = 0; i < FILES; i++) files[`docs/f${String(i).padStart(3, '0')}.md`] = body(`f${i}`, 1);
    ws = await tempWorkspace(files);
    env = {
      DATABASE_URL: api.database.url,
      REDIS_URL: process.env.TEST_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      QUEUE_PREFIX: api.prefix,
      LOG_LEVEL: 'warn',
      WRITEGATE_POLICY_FILE: policyFile,
      EXECUTOR_WORKSPACES: JSON.stringify({ app: ws.root }),
      EXECUTOR_LOCK_TTL_MS: '2000',
      EXECUTOR_WRITE_CONCURRENCY: '2',
      EXECUTOR_FAULT_WRITE_DELAY_MS: String(WRITE_DELAY_MS),
      EXECUTOR_POLL_INTERVAL_MS: '500',
      EXECUTOR_REQUEUE_GRACE_MS: '2000',
      DB_POOL_SIZE: '4',
    };
    executor = await ExecutorProcess.start(env);
    await executor.ready();
  }, 120_000);

  afterAll(async () => {
    await executor?.kill();
    await api?.stop();
    await ws?.remove();
    if (policyDir) await rm(policyDir, { recursive: true, force: true });
  }, 60_000);

  /** A change set over every file: updates, deletes, creates in new directories. */
  function plannedChanges(round: number): { changes: FileChange[]; after: Record<string, string | null> } {
    const changes: FileChange[] = [];
    const after: Record<string, string | null> = {};
    for (let i = 0; i < FILES; i++) {
      const path = `docs/f${String(i).padStart(3, '0')}.md`;
      // Every round starts from the original tree: the rounds before it were rolled back (or the suite fails).
      const current = body(`f${i}`, 1);
      if (i % 10 === 0) {
        changes.push(change.delete(path, current));
        after[path] = null;
      } else {
        changes.push(change.update(path, current, body(`f${i}`, 2 + round)));
        after[path] = body(`f${i}`, 2 + round);
      }
    }
    for (let i = 0; i < 20; i++) {
      const path = `docs/new-${round}/d${i % 4}/n${i}.md`;
      changes.push(change.create(path, body(`n${i}`, round)));
      after[path] = body(`n${i}`, round);
    }
    return { changes, after };
  }

  async function stateOf(
    after: Record<string, string | null>,
  ): Promise<{ newCount: number; oldCount: number }> {
    let newCount = 0;
    let oldCount = 0;
    for (const [path, content] of Object.entries(after)) {
      const exists = await ws.exists(path);
      const isNew = content === null ? !exists : exists && (await ws.read(path)) === content;
      if (isNew) newCount += 1;
      else oldCount += 1;
    }
    return { newCount, oldCount };
  }

  async function playRound(index: number, killAt: 'applying' | 'verifying'): Promise<void> {
    const id = `chaos-${index}`;
    const { changes, after } = plannedChanges(index);
    const before = await ws.snapshot();
    const verification = killAt === 'verifying' ? ['takes-4s'] : ['pass'];
    const sub = submission({
      changesetId: id,
      workspace: 'app',
      changes,
      plan: {
        verification_plan: { description: 'checks', verifications: verification },
        health_checks: [{ type: 'verification', name: 'noop', verification: 'pass' }],
      },
    });
    const submitted = await call(`${api.url}/v1/changesets`, { key, body: sub });
    expect(
      submitted.body.verdict?.verdict,
      JSON.stringify(submitted.body.verdict?.reasons ?? submitted.body),
    ).toBe('ALLOW');

    await waitFor(
      `change set ${id} to be ${killAt}`,
      async () => {
        const row = await api.db
          .selectFrom('changesets')
          .select('status')
          .where('changeset_id', '=', id)
          .executeTakeFirst();
        return row?.status === killAt;
      },
      { timeoutMs: 60_000, intervalMs: 10 },
    );
    const killDelayMs =
      killAt === 'applying' ? 200 + Math.round(random() * 1200) : 300 + Math.round(random() * 1500);
    await new Promise((resolve) => setTimeout(resolve, killDelayMs));
    await executor!.kill();
    const atKill = await stateOf(after);

    executor = await ExecutorProcess.start(env);
    await executor.ready();
    const row = await waitForChangeSet(
      api.db,
      TENANT,
      id,
      ['completed', 'rolled_back', 'rollback_failed', 'failed'],
      60_000,
    );
    const identicalToBefore = JSON.stringify(await ws.snapshot()) === JSON.stringify(before);
    const finalState = await stateOf(after);
    const fullyApplied = finalState.oldCount === 0;
    rounds.push({
      id,
      killAt,
      killDelayMs,
      newAtKill: atKill.newCount,
      oldAtKill: atKill.oldCount,
      status: row.status,
      identicalToBefore,
      fullyApplied,
    });
    console.log(
      `round ${index} (${killAt}): killed ${killDelayMs} ms in with ${atKill.newCount}/${atKill.newCount + atKill.oldCount} files changed; after restart: ${row.status}, identical to before: ${identicalToBefore}`,
    );

    // The invariant: all or nothing, and the record says which.
    if (row.status === 'completed')
      expect(fullyApplied, `${id} completed but not fully applied (seed ${SEED})`).toBe(true);
    else {
      expect(row.status, `${id}: ${row.error_message} (seed ${SEED})`).toBe('rolled_back');
      expect(identicalToBefore, `${id} rolled back but not byte-identical (seed ${SEED})`).toBe(true);
    }
    const steps = await api.db
      .selectFrom('changeset_steps')
      .select(['step', 'status'])
      .where('changeset_id', '=', id)
      .orderBy('step_id')
      .execute();
    if (row.status === 'rolled_back')
      expect(steps.map((s) => `${s.step}:${s.status}`).slice(-2)).toEqual(['recovery:ok', 'rollback:ok']);
  }

  it('should leave the workspace fully applied or byte-identical after each kill during apply', async () => {
    for (let round = 0; round < ROUNDS; round++) await playRound(round, 'applying');
    // The kills really landed mid-apply: at least one left a half-written tree for the restart to repair.
    expect(
      rounds.some((r) => r.newAtKill > 0 && r.oldAtKill > 0),
      `seed ${SEED}: ${JSON.stringify(rounds)}`,
    ).toBe(true);
  }, 300_000);

  it('should roll back a change set whose verification was running when the process died', async () => {
    await playRound(ROUNDS, 'verifying');
    expect(rounds.at(-1)).toMatchObject({ status: 'rolled_back', identicalToBefore: true });
  }, 120_000);

  it('should then apply a change set normally after the restarts', async () => {
    const { changes, after } = plannedChanges(9);
    await call(`${api.url}/v1/changesets`, {
      key,
      body: submission({
        changesetId: 'chaos-final',
        workspace: 'app',
        changes,
        plan: { health_checks: [{ type: 'verification', name: 'noop', verification: 'pass' }] },
      }),
    });
    const row = await waitForChangeSet(
      api.db,
      TENANT,
      'chaos-final',
      ['completed', 'rolled_back', 'failed'],
      60_000,
    );
    expect(row.status, row.error_message ?? '').toBe('completed');
    expect((await stateOf(after)).oldCount).toBe(0);
  }, 120_000);

  it("should keep the tenant's audit hash chain unbroken", async () => {
    const chain = await verifyAuditChain(api.db, TENANT);
    expect(chain.broken, `seed ${SEED}`).toBeUndefined();
    const types = await api.db
      .selectFrom('task_audits')
      .select('event_type')
      .where('tenant_id', '=', TENANT)
      .execute();
    expect(types.filter((t) => t.event_type === 'CHANGESET_RECOVERY_STARTED').length).toBe(ROUNDS + 1);
  });
});
