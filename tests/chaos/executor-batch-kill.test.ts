/**
 * The batched apply's crash windows (docs/executor.md, "The batched write"): a batch of entries is marked
 * `writing` in one statement, all its temp files are written and fsynced, then renamed one by one. The executor
 * runs as deployed and is killed with SIGKILL at two exact moments, found by watching the journal and the disk
 * rather than by timing:
 *   1. after a batch was marked and every temp file of it written, before the first rename (nothing in place);
 *   2. between two renames (some files new, the rest old, temp files beside them).
 * After each restart the change set must be `rolled_back` by recovery, the workspace byte-identical to before,
 * and no temp file left behind. Renames are slowed (EXECUTOR_FAULT_WRITE_DELAY_MS, one at a time) to hold the
 * window open while the test looks.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileChange } from '@warden/domain';
import { call, startTestApi, type TestApi } from '../support/api.js';
import {
  change,
  submission,
  tempWorkspace,
  waitFor,
  waitForChangeSet,
  type TempWorkspace,
} from '../support/executor.js';
import { ExecutorProcess } from '../support/executor-process.js';

const TENANT = 'batch-chaos';
/** More than one batch of the apply (100 entries): the first batch is all updates and deletes. */
const FILES = 120;

const body = (name: string, version: number) =>
  Array.from({ length: 20 }, (_, i) => `${name} v${version} line ${i}`).join('\n') + '\n';

describe('executor killed inside a batch of the apply', () => {
  let api: TestApi;
  let ws: TempWorkspace;
  let policyDir: string;
  let key: string;
  let executor: ExecutorProcess | undefined;
  let baseEnv: Record<string, string>;

  beforeAll(async () => {
    policyDir = await mkdtemp(join(tmpdir(), 'warden-batch-chaos-policy-'));
    const policyFile = join(policyDir, 'writegate.yaml');
    await writeFile(
      policyFile,
      'constraints:\n  max_files_touched: 500\n  max_patch_lines: 100000\nrisk:\n  large_change_lines: 100000\n' +
        'approval:\n  require_health_checks_from: CRITICAL\n',
    );
    api = await startTestApi({ WRITEGATE_POLICY_FILE: policyFile });
    key = await api.createKey(TENANT, ['changesets:write']);
    const files: Record<string, string> = {};
    for (let i = 0; i < FILES; i++)
      files[`docs/d${i % 4}/f${String(i).padStart(3, '0')}.md`] = body(`f${i}`, 1);
    ws = await tempWorkspace(files);
    baseEnv = {
      DATABASE_URL: api.database.url,
      REDIS_URL: process.env.TEST_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      QUEUE_PREFIX: api.prefix,
      LOG_LEVEL: 'warn',
      WRITEGATE_POLICY_FILE: policyFile,
      EXECUTOR_WORKSPACES: JSON.stringify({ app: ws.root }),
      EXECUTOR_LOCK_TTL_MS: '2000',
      EXECUTOR_WRITE_CONCURRENCY: '1',
      EXECUTOR_POLL_INTERVAL_MS: '500',
      EXECUTOR_REQUEUE_GRACE_MS: '2000',
      DB_POOL_SIZE: '4',
    };
  }, 120_000);

  afterAll(async () => {
    await executor?.kill();
    await api?.stop();
    await ws?.remove();
    if (policyDir) await rm(policyDir, { recursive: true, force: true });
  }, 60_000);

  /** Updates and deletes of every file, and a few creates in a new directory (in the second batch). */
  function plannedChanges(round: number): FileChange[] {
    const changes: FileChange[] = [];
    for (let i = 0; i < FILES; i++) {
      const path = `docs/d${i % 4}/f${String(i).padStart(3, '0')}.md`;
      if (i % 10 === 5) changes.push(change.delete(path, body(`f${i}`, 1)));
      else changes.push(change.update(path, body(`f${i}`, 1), body(`f${i}`, 2 + round)));
    }
    for (let i = 0; i < 5; i++)
      changes.push(change.create(`docs/new-${round}/n${i}.md`, body(`n${i}`, round)));
    return changes;
  }

  async function tempFiles(): Promise<string[]> {
    const entries = await readdir(ws.root, { recursive: true });
    return entries.filter((name) => name.endsWith('.warden-tmp'));
  }

  async function writeStates(id: string): Promise<Record<string, number>> {
    const rows = await api.db
      .selectFrom('changeset_journal_entries as e')
      .innerJoin('changeset_journals as j', 'j.journal_id', 'e.journal_id')
      .select(['e.write_state'])
      .where('j.tenant_id', '=', TENANT)
      .where('j.changeset_id', '=', id)
      .execute();
    const counts: Record<string, number> = {};
    for (const row of rows) counts[row.write_state] = (counts[row.write_state] ?? 0) + 1;
    return counts;
  }

  async function playRound(
    round: number,
    renameDelayMs: number,
    killWhen: (state: { states: Record<string, number>; temps: number; changed: number }) => boolean,
  ): Promise<{ states: Record<string, number>; temps: number; changed: number }> {
    const id = `batch-kill-${round}`;
    const before = await ws.snapshot();
    executor = await ExecutorProcess.start({
      ...baseEnv,
      EXECUTOR_FAULT_WRITE_DELAY_MS: String(renameDelayMs),
    });
    await executor.ready();
    const submitted = await call(`${api.url}/v1/changesets`, {
      key,
      body: submission({ changesetId: id, workspace: 'app', changes: plannedChanges(round) }),
    });
    expect(submitted.body.verdict?.verdict, JSON.stringify(submitted.body)).toBe('ALLOW');

    const atKill = await waitFor(
      `the kill moment of ${id}`,
      async () => {
        const snapshot = await ws.snapshot();
        const changed = Object.keys(before).filter((path) => snapshot[path] !== before[path]).length;
        const state = { states: await writeStates(id), temps: (await tempFiles()).length, changed };
        return killWhen(state) ? state : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 20 },
    );
    await executor.kill();

    // Restarted with no slowdown: recovery runs before /readyz answers.
    executor = await ExecutorProcess.start(baseEnv);
    await executor.ready();
    const row = await waitForChangeSet(
      api.db,
      TENANT,
      id,
      ['completed', 'rolled_back', 'rollback_failed'],
      60_000,
    );
    expect(row.status, `${row.error_message}\n${executor.log}`).toBe('rolled_back');
    expect(row.error_code).toBe('interrupted');
    expect(JSON.stringify(await ws.snapshot())).toBe(JSON.stringify(before));
    expect(await tempFiles()).toEqual([]);
    const steps = await api.db
      .selectFrom('changeset_steps')
      .select(['step', 'status'])
      .where('tenant_id', '=', TENANT)
      .where('changeset_id', '=', id)
      .orderBy('step_id')
      .execute();
    expect(steps.map((s) => `${s.step}:${s.status}`).slice(-2)).toEqual(['recovery:ok', 'rollback:ok']);
    await executor.stop();
    executor = undefined;
    return atKill;
  }

  it('should restore the workspace when killed after a batch was marked and staged, before any rename', async () => {
    // The first batch: 100 entries, 90 updates (a temp file each) and 10 deletes (none).
    const atKill = await playRound(0, 60_000, ({ states, temps }) => states.writing === 100 && temps === 90);
    expect(atKill).toEqual({ states: { writing: 100, pending: FILES + 5 - 100 }, temps: 90, changed: 0 });
  }, 180_000);

  it('should restore the workspace when killed between two renames of a batch', async () => {
    const atKill = await playRound(1, 250, ({ changed }) => changed >= 3);
    expect(atKill.changed).toBeGreaterThanOrEqual(3);
    expect(atKill.changed).toBeLessThan(100);
    expect(atKill.states.writing).toBe(100);
  }, 180_000);
});
