/**
 * `warden gates list --tenant T`: a tenant's open gates from Postgres, newest first — never a gate that was
 * released, nor another tenant's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProgram, describeError, exitCodeFor } from '@warden/cli';
import { createTestDatabase, type TestDatabase } from '@warden/testing';

const TENANT = 'gated';

describe('warden gates list', () => {
  let database: TestDatabase;

  /** A task paused at a gate, as the supervisor leaves one; `state` other than open for a gate acted on. */
  async function gate(
    tenantId: string,
    taskId: string,
    openedAt: string,
    state: 'open' | 'released' = 'open',
  ): Promise<void> {
    await database.db
      .insertInto('tasks')
      .values({
        tenant_id: tenantId,
        task_id: taskId,
        status: state === 'open' ? 'paused' : 'running',
        metadata: JSON.stringify({}),
      })
      .execute();
    await database.db
      .insertInto('task_gates')
      .values({
        tenant_id: tenantId,
        task_id: taskId,
        gate_id: `${taskId}-gate`,
        checkpoint: 'open_plan',
        reason: `review ${taskId}`,
        state,
        opened_at: new Date(openedAt),
        expires_at: new Date('2030-01-01T00:00:00Z'),
        ...(state === 'open' ? {} : { released_at: new Date(), released_by: 'alice' }),
      })
      .execute();
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    await gate(TENANT, 'task-old', '2026-12-01T10:00:00Z');
    await gate(TENANT, 'task-new', '2026-12-02T10:00:00Z');
    await gate(TENANT, 'task-released', '2026-12-03T10:00:00Z', 'released');
    await gate('someone-else', 'task-theirs', '2026-12-03T10:00:00Z');
  });

  afterAll(async () => {
    await database?.drop();
  });

  async function warden(args: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const program = createProgram({
      environment: { env: { DATABASE_URL: database.url }, cwd: process.cwd() },
      io: { out: (text) => (out += text), err: (text) => (err += text) },
    });
    try {
      await program.parseAsync(['node', 'warden', ...args]);
      return { code: 0, out, err };
    } catch (error) {
      return { code: exitCodeFor(error), out, err: err + describeError(error) };
    }
  }

  it("should list only the tenant's open gates, newest first", async () => {
    const result = await warden(['gates', 'list', '--tenant', TENANT]);
    expect(result.code).toBe(0);
    const lines = result.out.trim().split('\n');
    expect(lines[0]).toMatch(/^GATE\s+TASK\s+CHECKPOINT\s+TASK STATUS\s+OPENED\s+EXPIRES\s+REASON$/);
    expect(lines.slice(1).map((line) => line.split(/\s+/)[1])).toEqual(['task-new', 'task-old']);
    expect(lines[1]).toContain('2030-01-01T00:00:00');
  });

  it('should print the gates as JSON with --json', async () => {
    const result = await warden(['gates', 'list', '--tenant', TENANT, '--json']);
    const gates = JSON.parse(result.out) as { gate_id: string; task_status: string; reason: string }[];
    expect(gates.map((g) => g.gate_id)).toEqual(['task-new-gate', 'task-old-gate']);
    expect(gates[0]).toMatchObject({ task_status: 'paused', reason: 'review task-new' });
  });

  it('should say so when no gate is open', async () => {
    expect(await warden(['gates', 'list', '--tenant', 'nobody'])).toMatchObject({
      code: 0,
      out: 'no open gates for tenant nobody\n',
    });
  });

  it('should refuse a bad --tenant with exit 2, naming the flag', async () => {
    const result = await warden(['gates', 'list', '--tenant', 'Not A Tenant!']);
    expect(result.code).toBe(2);
    expect(result.err).toContain('--tenant');
  });
});
