/**
 * Triggers as code (docs/scheduler.md, "Triggers as code"): `warden triggers apply -f FILE` shows a plan and
 * changes nothing without `--yes`; with it the changes commit in one transaction through the API's own
 * repository functions (audited as `cli:<user>`, the cutover gate included) and the scheduler picks them up;
 * `--prune` deletes what the file no longer lists. Plus `create`, `update` and `delete`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgram, exitCodeFor } from '@warden/cli';
import { findTrigger } from '@warden/db';
import {
  createTestDatabase,
  deleteQueuePrefix,
  testQueuePrefix,
  testServers,
  type TestDatabase,
} from '@warden/testing';
import {
  startTestScheduler,
  testQueues,
  triggerAudits,
  waitUntil,
  type TestScheduler,
} from '../support/scheduler.js';

const TENANT = 'apply-acme';

let database: TestDatabase;
let prefix: string;
let scheduler: TestScheduler;
let queues: ReturnType<typeof testQueues>;
let dir: string;

beforeAll(async () => {
  database = await createTestDatabase();
  prefix = testQueuePrefix();
  queues = testQueues(prefix);
  scheduler = await startTestScheduler({ databaseUrl: database.url, prefix });
  dir = mkdtempSync(join(tmpdir(), 'warden-apply-'));
});

afterAll(async () => {
  await scheduler?.stop();
  await queues?.disconnect();
  await database?.drop();
  await deleteQueuePrefix(prefix);
  rmSync(dir, { recursive: true, force: true });
});

async function warden(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const program = createProgram({
    environment: {
      env: { DATABASE_URL: database.url, REDIS_URL: testServers.redisUrl, QUEUE_PREFIX: prefix },
      cwd: dir,
    },
    io: { out: (t) => void (out += t), err: (t) => void (err += t) },
  });
  try {
    await program.parseAsync(['node', 'warden', ...args]);
    return { code: 0, out, err };
  } catch (error) {
    return {
      code: exitCodeFor(error),
      out,
      err: err + (error instanceof Error ? error.message : String(error)),
    };
  }
}

function file(name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return name;
}

const triggerYaml = (name: string, expression: string, extra = '') =>
  `  - event_name: ${name}\n    expression: '${expression}'\n    agent: { queue: reports }\n${extra}`;

describe('warden triggers apply', () => {
  it('should show the plan and change nothing without --yes', async () => {
    const f = file('plan.yaml', `tenant: ${TENANT}\ntriggers:\n${triggerYaml('nightly', '0 2 * * *')}`);
    const result = await warden(['triggers', 'apply', '-f', f]);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/\+ create\s+nightly/);
    expect(result.out).toMatch(/plan: 1 to create, 0 to update, 0 to delete, 0 unchanged/);
    expect(result.out).toMatch(/run again with --yes/);
    expect(await findTrigger(database.db, TENANT, 'nightly')).toBeUndefined();
  });

  it('should create, update and (with --prune) delete, audited, and hand the changes to the scheduler', async () => {
    const first = file(
      'v1.yaml',
      `tenant: ${TENANT}\ntriggers:\n${triggerYaml('nightly', '0 2 * * *')}${triggerYaml('hourly', '0 * * * *')}`,
    );
    const created = await warden(['triggers', 'apply', '-f', first, '--yes']);
    expect(created.code, created.err).toBe(0);
    expect(created.out).toMatch(/applied to tenant apply-acme/);
    const nightly = (await findTrigger(database.db, TENANT, 'nightly'))!;
    expect(nightly.definition.expression).toBe('0 2 * * *');
    // The scheduler heard of it: a job scheduler exists for the trigger.
    await waitUntil('the job scheduler of the new trigger', async () =>
      (await queues.get('cron-fires').getJobScheduler(nightly.trigger_id)) ? true : undefined,
    );
    const audits = await triggerAudits(database.db, TENANT, 'nightly');
    expect(audits.map((a) => String(a.payload.by))).toEqual([expect.stringMatching(/^cli:/)]);

    // Again, unchanged: nothing to do.
    const again = await warden(['triggers', 'apply', '-f', first, '--yes']);
    expect(again.out).toMatch(/= unchanged\s+hourly/);
    expect(again.out).toMatch(/nothing to change/);

    const second = file('v2.yaml', `tenant: ${TENANT}\ntriggers:\n${triggerYaml('nightly', '30 3 * * *')}`);
    const kept = await warden(['triggers', 'apply', '-f', second]);
    expect(kept.out).toMatch(/~ update\s+nightly \(expression\)/);
    expect(kept.out).toMatch(/hourly \(not in the file; kept/);

    const pruned = await warden(['triggers', 'apply', '-f', second, '--prune', '--yes', '--json']);
    expect(pruned.code, pruned.err).toBe(0);
    expect(JSON.parse(pruned.out)).toMatchObject({
      applied: true,
      plan: [
        { action: 'delete', event_name: 'hourly' },
        { action: 'update', event_name: 'nightly', changed_fields: ['expression'] },
      ],
    });
    expect((await findTrigger(database.db, TENANT, 'nightly'))!.definition.expression).toBe('30 3 * * *');
    expect(await findTrigger(database.db, TENANT, 'hourly')).toBeUndefined();
  });

  it('should refuse a bad file with the field and change nothing', async () => {
    const bad = file(
      'bad.yaml',
      `tenant: ${TENANT}\ntriggers:\n${triggerYaml('ok-one', '0 1 * * *')}${triggerYaml('broken', '*/100 * * * *')}${triggerYaml('ok-one', '0 5 * * *')}`,
    );
    const result = await warden(['triggers', 'apply', '-f', bad, '--yes']);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/triggers\.1\.expression|triggers\[1\]\.expression/);
    expect(result.err).toMatch(/defined twice/);
    expect(await findTrigger(database.db, TENANT, 'ok-one')).toBeUndefined();
  });

  it('should apply all or nothing: a step the cutover gate refuses leaves every trigger as it was', async () => {
    const shadow = file(
      'shadow.yaml',
      `tenant: ${TENANT}\ntriggers:\n${triggerYaml('migrating', '0 4 * * *', '    fallback: { queue: legacy }\n    mode: shadow\n    migration_weight: 0\n')}`,
    );
    expect((await warden(['triggers', 'apply', '-f', shadow, '--yes'])).code).toBe(0);
    const live = file(
      'live.yaml',
      `tenant: ${TENANT}\ntriggers:\n${triggerYaml('newcomer', '0 6 * * *')}${triggerYaml('migrating', '0 4 * * *', '    fallback: { queue: legacy }\n    mode: live\n    migration_weight: 1\n')}`,
    );
    const refused = await warden(['triggers', 'apply', '-f', live, '--yes']);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toMatch(/consistency|shadow/i);
    expect(await findTrigger(database.db, TENANT, 'newcomer')).toBeUndefined();
    expect((await findTrigger(database.db, TENANT, 'migrating'))!.definition.mode).toBe('shadow');
  });

  it('should take the tenant from --tenant and refuse one that contradicts the file', async () => {
    const noTenant = file('no-tenant.yaml', `triggers:\n${triggerYaml('x', '0 1 * * *')}`);
    expect((await warden(['triggers', 'apply', '-f', noTenant])).err).toMatch(/no tenant/);
    const other = file('other.yaml', `tenant: someone-else\ntriggers: []\n`);
    expect((await warden(['triggers', 'apply', '-f', other, '--tenant', TENANT])).err).toMatch(/differs/);
  });
});

describe('warden triggers create, update, delete', () => {
  it('should create one trigger, refuse it twice, update fields, and delete only with --yes', async () => {
    const def = file('one.yaml', "event_name: single\nexpression: '0 9 * * 1'\nagent: { queue: reports }\n");
    const created = await warden(['triggers', 'create', '-f', def, '--tenant', TENANT]);
    expect(created.code, created.err).toBe(0);
    expect((await warden(['triggers', 'create', '-f', def, '--tenant', TENANT])).err).toMatch(
      /exists already/,
    );

    const patch = file('patch.yaml', 'max_daily_runs: 3\ndescription: weekly digest\n');
    const updated = await warden(['triggers', 'update', 'single', '-f', patch, '--tenant', TENANT]);
    expect(updated.out).toMatch(
      /updated trigger single: .*description.*max_daily_runs|max_daily_runs.*description/,
    );
    expect((await findTrigger(database.db, TENANT, 'single'))!.definition.max_daily_runs).toBe(3);

    expect((await warden(['triggers', 'delete', 'single', '--tenant', TENANT])).err).toMatch(/needs --yes/);
    expect(await findTrigger(database.db, TENANT, 'single')).toBeDefined();
    expect((await warden(['triggers', 'delete', 'single', '--tenant', TENANT, '--yes'])).code).toBe(0);
    expect(await findTrigger(database.db, TENANT, 'single')).toBeUndefined();
  });
});
