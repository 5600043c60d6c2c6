/**
 * The batched apply (docs/executor.md, "The batched write"): entries go in batches of 100, each checked
 * (compare-and-swap), marked `writing` in one statement, staged and renamed before the next batch starts. A
 * failure in a later batch leaves the earlier ones written and `applied`, the rest `pending`: the rollback
 * undoes exactly the written batches and leaves the file someone else changed alone.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestApi, type TestApi } from '../support/api.js';
import {
  change,
  startTestExecutor,
  submission,
  tempWorkspace,
  waitForChangeSet,
  type TempWorkspace,
  type TestExecutor,
} from '../support/executor.js';
import type { ExecutionPoint } from '../../services/executor/src/index.js';

const TENANT = 'batched';
const FILES = 130;
const path = (i: number) => `docs/d${i % 5}/f${String(i).padStart(3, '0')}.md`;

describe('the batched apply', () => {
  let api: TestApi;
  let ws: TempWorkspace;
  let executor: TestExecutor;
  let policyDir: string;
  let writer: string;
  const hooks = new Map<string, (point: ExecutionPoint) => Promise<void> | void>();

  beforeAll(async () => {
    // The repository policy caps a change set at 50 files; batches need more.
    policyDir = await mkdtemp(join(tmpdir(), 'warden-batched-policy-'));
    const policyFile = join(policyDir, 'writegate.yaml');
    await writeFile(
      policyFile,
      'constraints:\n  max_files_touched: 500\n  max_patch_lines: 100000\nrisk:\n  large_change_lines: 100000\n',
    );
    api = await startTestApi({ WRITEGATE_POLICY_FILE: policyFile });
    const files: Record<string, string> = {};
    for (let i = 0; i < FILES; i++) files[path(i)] = `f${i} v1\n`;
    ws = await tempWorkspace(files);
    executor = await startTestExecutor({
      databaseUrl: api.database.url,
      prefix: api.prefix,
      workspaces: { app: ws.root },
      consume: false,
      env: { WRITEGATE_POLICY_FILE: policyFile },
      hooks: { at: (point, context) => hooks.get(context.changeset_id)?.(point) },
    });
    writer = await api.createKey(TENANT, ['changesets:write']);
  });

  afterAll(async () => {
    await executor?.stop();
    await api?.stop();
    await ws?.remove();
    if (policyDir) await rm(policyDir, { recursive: true, force: true });
  });

  const submitUpdates = async (id: string, version: number) => {
    const changes = Array.from({ length: FILES }, (_, i) =>
      change.update(path(i), `f${i} v${version - 1}\n`, `f${i} v${version}\n`),
    );
    const response = await call(`${api.url}/v1/changesets`, {
      key: writer,
      body: submission({ changesetId: id, workspace: 'app', changes }),
    });
    expect(response.body.verdict?.verdict, JSON.stringify(response.body)).toBe('ALLOW');
  };
  const writeStates = async (id: string) =>
    (
      await api.db
        .selectFrom('changeset_journal_entries as e')
        .innerJoin('changeset_journals as j', 'j.journal_id', 'e.journal_id')
        .select(['e.seq', 'e.write_state'])
        .where('j.tenant_id', '=', TENANT)
        .where('j.changeset_id', '=', id)
        .orderBy('e.seq')
        .execute()
    ).map((row) => row.write_state);

  describe('when every batch applies', () => {
    it('should write every file and mark every entry applied', async () => {
      await submitUpdates('all-batches', 2);
      const outcome = await executor.service
        .runner()!
        .execute({ tenant_id: TENANT, changeset_id: 'all-batches' });
      expect(outcome).toMatchObject({ changeset_status: 'completed' });
      for (let i = 0; i < FILES; i++) expect(await ws.read(path(i))).toBe(`f${i} v2\n`);
      expect(await writeStates('all-batches')).toEqual(Array.from({ length: FILES }, () => 'applied'));
    });
  });

  describe('when a file of the second batch changed after the backup', () => {
    it('should undo the first batch, never touch the second, and leave the changed file alone', async () => {
      await submitUpdates('second-batch-cas', 3);
      const before = await ws.snapshot();
      // Journal committed, nothing written yet: a person edits a file of the second batch.
      hooks.set('second-batch-cas', async (point) => {
        if (point === 'backed_up') await ws.write(path(110), 'edited by a person\n');
      });
      const outcome = await executor.service
        .runner()!
        .execute({ tenant_id: TENANT, changeset_id: 'second-batch-cas' });
      expect(outcome).toMatchObject({ changeset_status: 'rolled_back' });
      const row = await waitForChangeSet(api.db, TENANT, 'second-batch-cas', ['rolled_back']);
      expect(row.error_code).toBe('cas_mismatch');

      // The first batch was written (and is undone); the second was checked, never marked, never written.
      expect(await writeStates('second-batch-cas')).toEqual(
        Array.from({ length: FILES }, (_, i) => (i < 100 ? 'applied' : 'pending')),
      );
      expect(await ws.read(path(110))).toBe('edited by a person\n');
      const after = await ws.snapshot();
      const differing = Object.keys(before).filter((p) => after[p] !== before[p]);
      expect(differing).toEqual([path(110)]);
      const rollback = await api.db
        .selectFrom('changeset_steps')
        .select(['status', 'detail'])
        .where('tenant_id', '=', TENANT)
        .where('changeset_id', '=', 'second-batch-cas')
        .where('step', '=', 'rollback')
        .executeTakeFirstOrThrow();
      const detail = rollback.detail as { restored: number; conflicts: string[] };
      expect(rollback.status).toBe('ok');
      expect(detail.restored).toBe(100);
      expect(detail.conflicts).toEqual([expect.stringContaining(path(110))]);
      expect(detail.conflicts[0]).toContain('never wrote it');
    });
  });
});
