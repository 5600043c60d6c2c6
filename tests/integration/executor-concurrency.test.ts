/**
 * What keeps two writers from hurting each other (docs/executor.md, execution steps 1, 2 and 4): compare-and-swap on the
 * files, Stripe-style idempotency (replay, mismatch, concurrent duplicate), and the fencing token that stops a
 * holder whose workspace lock expired while it was paused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { acquireFenceToken } from '@warden/db';
import { changesetJobId } from '@warden/queue';
import { testServers } from '@warden/testing';
import { call, startTestApi, type TestApi } from '../support/api.js';
import {
  change,
  changeSetSteps,
  forgeChangeSet,
  startTestExecutor,
  submission,
  tempWorkspace,
  waitFor,
  waitForChangeSet,
  type TempWorkspace,
  type TestExecutor,
  testPolicyFile,
} from '../support/executor.js';
import type { ExecutionPoint } from '../../services/executor/src/index.js';

const TENANT = 'fence';

/** A pause a test opens when it is ready: an executor hook waits on it at one point of one change set. */
class Pause {
  reached = false;
  private release!: () => void;
  private readonly released = new Promise<void>((resolve) => (this.release = resolve));

  constructor(
    readonly changesetId: string,
    readonly point: ExecutionPoint,
  ) {}

  async hold(point: ExecutionPoint, changesetId: string): Promise<void> {
    if (point !== this.point || changesetId !== this.changesetId) return;
    this.reached = true;
    await this.released;
  }

  open(): void {
    this.release();
  }
}

describe('executor concurrency safety', () => {
  let api: TestApi;
  let ws: TempWorkspace;
  let writer: string;
  const pauses: Pause[] = [];
  let executor: TestExecutor;

  const hooks = {
    at: (point: ExecutionPoint, context: { changeset_id: string }) =>
      Promise.all(pauses.map((p) => p.hold(point, context.changeset_id))).then(() => undefined),
  };
  const run = (id: string, which: TestExecutor = executor) =>
    which.service.runner()!.execute({ tenant_id: TENANT, changeset_id: id });
  const submit = async (body: unknown) => {
    const response = await call(`${api.url}/v1/changesets`, { key: writer, body });
    expect(response.status).toBe(201);
    return response.body;
  };

  beforeAll(async () => {
    api = await startTestApi({ WRITEGATE_POLICY_FILE: await testPolicyFile() });
    ws = await tempWorkspace({
      'docs/cas.md': 'v1\n',
      'docs/other.md': 'other\n',
      'docs/held.md': 'held v1\n',
      'docs/fenced.md': 'fenced v1\n',
    });
    executor = await startTestExecutor({
      databaseUrl: api.database.url,
      prefix: api.prefix,
      workspaces: { app: ws.root },
      consume: false,
      hooks,
    });
    writer = await api.createKey(TENANT, ['changesets:write']);
  });

  afterAll(async () => {
    for (const pause of pauses) pause.open();
    await executor?.stop();
    await api?.stop();
    await ws?.remove();
  });

  describe('compare-and-swap', () => {
    it('should refuse a change set whose file changed after submission, leaving every file untouched', async () => {
      await submit(
        submission({
          changesetId: 'cas-changed',
          workspace: 'app',
          changes: [
            change.update('docs/other.md', 'other\n', 'other v2\n'),
            change.update('docs/cas.md', 'v1\n', 'v2\n'),
          ],
        }),
      );
      await ws.write('docs/cas.md', 'edited by a person\n');
      const before = await ws.snapshot();
      expect(await run('cas-changed')).toMatchObject({ status: 'done', changeset_status: 'failed' });
      const row = await waitForChangeSet(api.db, TENANT, 'cas-changed', ['failed']);
      expect(row.error_code).toBe('cas_mismatch');
      expect(row.error_message).toContain('"docs/cas.md" changed since the change set was made');
      expect(await ws.snapshot()).toEqual(before);
      expect(await changeSetSteps(api.db, TENANT, 'cas-changed')).toEqual([
        'submitted:ok',
        'gated:ok',
        'locked:ok',
        'validating:failed',
      ]);
    });

    it('should refuse a create over a file that appeared, and a delete of a file that is gone', async () => {
      await submit(
        submission({
          changesetId: 'cas-create',
          workspace: 'app',
          changes: [change.create('docs/appeared.md', 'mine\n')],
        }),
      );
      await ws.write('docs/appeared.md', 'theirs\n');
      expect(await run('cas-create')).toMatchObject({ changeset_status: 'failed' });
      expect(await ws.read('docs/appeared.md')).toBe('theirs\n');

      await submit(
        submission({
          changesetId: 'cas-delete',
          workspace: 'app',
          changes: [change.delete('docs/never.md', 'x\n')],
          plan: { health_checks: [{ type: 'verification', name: 'ok', verification: 'pass' }] },
        }),
      );
      expect(await run('cas-delete')).toMatchObject({ changeset_status: 'failed' });
      expect((await waitForChangeSet(api.db, TENANT, 'cas-delete', ['failed'])).error_message).toContain(
        'does not exist',
      );
    });
  });

  it('should refuse to replace a file too large to back up, without reading it whole', async () => {
    const big = 'x'.repeat(1024 * 1024 + 1);
    await ws.write('docs/big.md', big);
    await submit(
      submission({
        changesetId: 'too-big',
        workspace: 'app',
        changes: [change.update('docs/big.md', big, 'small now\n')],
      }),
    );
    expect(await run('too-big')).toMatchObject({ changeset_status: 'failed' });
    const row = await waitForChangeSet(api.db, TENANT, 'too-big', ['failed']);
    expect(row).toMatchObject({
      error_code: 'writegate_denied',
      error_message: expect.stringContaining('over max_file_bytes'),
    });
    expect((await ws.read('docs/big.md')).length).toBe(big.length);
  });

  describe('idempotency', () => {
    it('should replay a completed execution for an identical change set', async () => {
      const first = submission({
        changesetId: 'idem-1',
        planId: 'plan-idem',
        workspace: 'app',
        changes: [change.create('docs/idem.md', 'idem\n')],
      });
      await submit(first);
      expect(await run('idem-1')).toMatchObject({ changeset_status: 'completed' });
      await submit({ ...first, changeset: { ...first.changeset, changeset_id: 'idem-2' } });
      expect(await run('idem-2')).toEqual({
        status: 'done',
        changeset_status: 'completed',
        replayed_from: 'idem-1',
      });
      // Delivered again (BullMQ is at-least-once): answered from the row, nothing runs.
      expect(await run('idem-2')).toEqual({ status: 'done', changeset_status: 'completed' });
      expect(await ws.read('docs/idem.md')).toBe('idem\n');
    });

    it('should refuse the same key with other content, in the API and in the executor', async () => {
      const base = submission({
        changesetId: 'mismatch-1',
        planId: 'plan-mismatch',
        workspace: 'app',
        changes: [change.create('docs/mismatch.md', 'm\n')],
      });
      await submit(base);
      expect(await run('mismatch-1')).toMatchObject({ changeset_status: 'completed' });
      const other = {
        plan: { ...base.plan, intent: 'something else entirely' },
        changeset: { ...base.changeset, changeset_id: 'mismatch-2' },
      };
      const refused = await call(`${api.url}/v1/changesets`, { key: writer, body: other });
      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe('idempotency_conflict');
      // Past the API, straight into Postgres: the executor's own record refuses it.
      await forgeChangeSet(api.db, TENANT, other);
      expect(await run('mismatch-2')).toMatchObject({ changeset_status: 'failed' });
      expect((await waitForChangeSet(api.db, TENANT, 'mismatch-2', ['failed'])).error_code).toBe(
        'idempotency_conflict',
      );
    });

    it('should make a concurrent duplicate wait for the first and then replay its result', async () => {
      const pause = new Pause('dup-running', 'applied');
      pauses.push(pause);
      const body = submission({
        changesetId: 'dup-running',
        planId: 'plan-dup-c',
        workspace: 'app',
        changes: [change.create('docs/dup-c.md', 'once\n')],
      });
      await submit(body);
      await submit({ ...body, changeset: { ...body.changeset, changeset_id: 'dup-waiting' } });
      const running = run('dup-running');
      await waitFor('the first change set to be applied and paused', async () => pause.reached);
      const waiting = run('dup-waiting');
      await waitFor('the duplicate to record that it waits', async () =>
        (await changeSetSteps(api.db, TENANT, 'dup-waiting')).includes('idempotency:waiting'),
      );
      pause.open();
      expect(await running).toMatchObject({ changeset_status: 'completed' });
      expect(await waiting).toEqual({
        status: 'done',
        changeset_status: 'completed',
        replayed_from: 'dup-running',
      });
      const journals = await api.db
        .selectFrom('changeset_journals')
        .select('changeset_id')
        .where('changeset_id', 'like', 'dup-%')
        .execute();
      expect(journals.map((j) => j.changeset_id)).toEqual(['dup-running']);
    });

    it('should defer a concurrent duplicate that may not wait (a 409 for the queue), and replay it later', async () => {
      const impatient = await startTestExecutor({
        databaseUrl: api.database.url,
        prefix: api.prefix,
        workspaces: { app: ws.root },
        consume: false,
        env: { EXECUTOR_DUPLICATE_WAIT_MS: '0' },
      });
      try {
        const pause = new Pause('defer-running', 'validated');
        pauses.push(pause);
        const body = submission({
          changesetId: 'defer-running',
          planId: 'plan-defer',
          workspace: 'app',
          changes: [change.create('docs/defer.md', 'once\n')],
        });
        await submit(body);
        await submit({ ...body, changeset: { ...body.changeset, changeset_id: 'defer-second' } });
        const running = run('defer-running');
        await waitFor('the first change set to pause', async () => pause.reached);
        expect(await run('defer-second', impatient)).toMatchObject({
          status: 'deferred',
          reason: 'identical change set defer-running is running',
        });
        pause.open();
        await running;
        expect(await run('defer-second', impatient)).toEqual({
          status: 'done',
          changeset_status: 'completed',
          replayed_from: 'defer-running',
        });
      } finally {
        await impatient.stop();
      }
    });
  });

  it('should put a job back on the queue (delayed, not failed) while its workspace is busy', async () => {
    const pause = new Pause('busy-first', 'validated');
    pauses.push(pause);
    const consuming = await startTestExecutor({
      databaseUrl: api.database.url,
      prefix: api.prefix,
      workspaces: { app: ws.root },
      hooks,
      env: { EXECUTOR_LOCK_WAIT_MS: '0', EXECUTOR_CONCURRENCY: '2' },
    });
    try {
      await submit(
        submission({
          changesetId: 'busy-first',
          workspace: 'app',
          changes: [change.create('docs/busy-1.md', '1\n')],
        }),
      );
      await waitFor('the first change set to hold the workspace', async () => pause.reached);
      await submit(
        submission({
          changesetId: 'busy-second',
          workspace: 'app',
          changes: [change.create('docs/busy-2.md', '2\n')],
        }),
      );
      const queue = new Queue('changesets', {
        connection: { url: testServers.redisUrl },
        prefix: api.prefix,
      });
      try {
        const job = await waitFor('the second job to be delayed', async () => {
          const found = await queue.getJob(changesetJobId(TENANT, 'busy-second'));
          return found && (await found.getState()) === 'delayed' ? found : undefined;
        });
        expect(job.attemptsMade).toBe(0);
        pause.open();
        await waitForChangeSet(api.db, TENANT, 'busy-second', ['completed']);
        expect(await ws.read('docs/busy-2.md')).toBe('2\n');
      } finally {
        await queue.close();
      }
    } finally {
      pause.open();
      await consuming.stop();
    }
  });

  describe('a stale lock holder', () => {
    let stalling: TestExecutor;
    let successor: TestExecutor;

    beforeAll(async () => {
      // A holder whose lock lives one second and is never extended: paused longer, it has lost the workspace.
      stalling = await startTestExecutor({
        databaseUrl: api.database.url,
        prefix: api.prefix,
        workspaces: { app: ws.root },
        consume: false,
        extendLocks: false,
        hooks,
        env: { EXECUTOR_LOCK_TTL_MS: '1000' },
      });
      successor = await startTestExecutor({
        databaseUrl: api.database.url,
        prefix: api.prefix,
        workspaces: { app: ws.root },
        consume: false,
      });
    });

    afterAll(async () => {
      await stalling?.stop();
      await successor?.stop();
    });

    it('should not write once a newer fencing token exists, and leave the journal to the next holder', async () => {
      const pause = new Pause('stale-fence', 'backed_up');
      pauses.push(pause);
      await submit(
        submission({
          changesetId: 'stale-fence',
          workspace: 'app',
          changes: [change.update('docs/fenced.md', 'fenced v1\n', 'written by a stale holder\n')],
        }),
      );
      const stale = run('stale-fence', stalling);
      await waitFor('the holder to back up and stall', async () => pause.reached);
      // Someone else takes the workspace: a newer token, as every new lock holder gets.
      await acquireFenceToken(api.db, { workspace: 'app', holder: 'someone-else', lockTimeoutMs: 5000 });
      pause.open();
      expect(await stale).toMatchObject({ status: 'skipped', reason: expect.stringContaining('superseded') });
      expect(await ws.read('docs/fenced.md')).toBe('fenced v1\n');
      // The next holder finds the journal in flight and settles it.
      expect(
        await successor.service.recovery()!.recoverAll({ onlyExpiredLeases: false, lockWaitMs: 5000 }),
      ).toBe(1);
      const row = await waitForChangeSet(api.db, TENANT, 'stale-fence', ['rolled_back']);
      expect(row.error_code).toBe('interrupted');
      expect(await ws.read('docs/fenced.md')).toBe('fenced v1\n');
    });

    it('should not write after its lock expired and another executor took the workspace over', async () => {
      const pause = new Pause('stale-lock', 'backed_up');
      pauses.push(pause);
      await submit(
        submission({
          changesetId: 'stale-lock',
          workspace: 'app',
          changes: [change.update('docs/held.md', 'held v1\n', 'written by a stale holder\n')],
        }),
      );
      const stale = run('stale-lock', stalling);
      await waitFor('the holder to back up and stall', async () => pause.reached);
      // Past its TTL, unextended: the Redis lock is gone. The successor takes the workspace and recovers the journal.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(
        await successor.service.recovery()!.recoverAll({ onlyExpiredLeases: false, lockWaitMs: 10_000 }),
      ).toBe(1);
      expect((await waitForChangeSet(api.db, TENANT, 'stale-lock', ['rolled_back'])).error_message).toContain(
        'stopped during prepared',
      );
      pause.open();
      expect(await stale).toMatchObject({
        status: 'skipped',
        reason: expect.stringContaining('took this change set over'),
      });
      expect(await ws.read('docs/held.md')).toBe('held v1\n');
      const steps = await changeSetSteps(api.db, TENANT, 'stale-lock');
      expect(steps.slice(-2)).toEqual(['recovery:ok', 'rollback:ok']);
    });
  });
});
