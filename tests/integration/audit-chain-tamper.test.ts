/**
 * The audit chain against someone who can write its tables: every way of tampering the security issue lists,
 * each on its own tenant, and what `warden audit verify` says about it. Real Postgres; the CLI runs in-process
 * (one case spawns it, for the exit code an operator sees).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Migrator, sql } from 'kysely';
import { createProgram, exitCodeFor, type CliIo } from '@warden/cli';
import {
  anchorAuditChains,
  appendAudits,
  migrateToLatest,
  migrations,
  releaseGate,
  verifyAuditChain,
  type Db,
  type NewAudit,
} from '@warden/db';
import {
  AUDIT_HASH_VERSION,
  GENESIS_HASH,
  auditKeysField,
  auditRowHash,
  toAuditChainContent,
} from '@warden/domain';
import { createTestDatabase, type TestDatabase } from '@warden/testing';
import { createTestProcessor, taskEvent } from '../support/supervisor.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const SECRET = 'audit-key-for-tests-0123456789abcdef';
const KEYS = auditKeysField.parse(SECRET);
const KEY = KEYS[0]!;

interface WardenRun {
  code: number;
  out: string;
  err: string;
}

/** `warden …` in-process, over `url`, with `WARDEN_AUDIT_KEY` unless `withKey` is false. */
async function warden(
  url: string,
  args: string[],
  options: { withKey?: boolean; key?: string } = {},
): Promise<WardenRun> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (text) => void (out += text), err: (text) => void (err += text) };
  const env: NodeJS.ProcessEnv = { DATABASE_URL: url };
  if (options.withKey !== false) env.WARDEN_AUDIT_KEY = options.key ?? SECRET;
  try {
    await createProgram({ environment: { env, cwd: repoRoot }, io }).parseAsync(['node', 'warden', ...args]);
    return { code: 0, out, err };
  } catch (error) {
    return { code: exitCodeFor(error), out, err: err + String(error) };
  }
}

const verify = (url: string, tenant: string, options: { withKey?: boolean; key?: string } = {}) =>
  warden(url, ['audit', 'verify', '--tenant', tenant], options);

/** Decision ids are unique across the table, so every row made here gets its own. */
let serial = 0;

function audit(tenant: string, i: number): NewAudit {
  serial += 1;
  return {
    tenant_id: tenant,
    task_id: `task-${i % 3}`,
    event_type: i % 2 === 0 ? 'SUPERVISOR_ALLOWED' : 'SUPERVISOR_PAUSED',
    level: i % 2 === 0 ? 'info' : 'warn',
    decision_id: `${tenant}-decision-${serial}`,
    event_id: `${tenant}-evt-${i}`,
    source_event_ts: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
    payload: { reason: `row ${i}`, findings: [{ code: 'RISK_ERROR_RATE' }] },
  };
}

/** A chain of `batches` × `perBatch` rows, appended as the writers do (one transaction per batch). */
async function seedChain(db: Db, tenant: string, batches = 3, perBatch = 4): Promise<void> {
  for (let b = 0; b < batches; b++) {
    await db.transaction().execute((trx) =>
      appendAudits(
        trx,
        Array.from({ length: perBatch }, (_, i) => audit(tenant, b * perBatch + i + 1)),
      ),
    );
  }
}

async function rowAt(db: Db, tenant: string, seq: number) {
  return db
    .selectFrom('task_audits')
    .selectAll()
    .where('tenant_id', '=', tenant)
    .where('chain_seq', '=', String(seq))
    .executeTakeFirstOrThrow();
}

/** Recomputes the hashes of a tenant's rows from `fromSeq` on, and the head, as anyone without the key can. */
async function rehashFrom(db: Db, tenant: string, fromSeq: number): Promise<void> {
  const rows = await db
    .selectFrom('task_audits')
    .selectAll()
    .where('tenant_id', '=', tenant)
    .orderBy('chain_seq')
    .execute();
  let prev = GENESIS_HASH;
  for (const row of rows) {
    if (Number(row.chain_seq) >= fromSeq) {
      const hash = auditRowHash(toAuditChainContent(row), prev);
      await db
        .updateTable('task_audits')
        .set({ prev_hash: prev, row_hash: hash })
        .where('audit_id', '=', row.audit_id)
        .execute();
      prev = hash;
    } else {
      prev = row.row_hash;
    }
  }
  await db
    .updateTable('audit_chain_heads')
    .set({ chain_seq: rows.length, row_hash: prev })
    .where('tenant_id', '=', tenant)
    .execute();
}

async function anchor(db: Db, tenant: string) {
  const results = await anchorAuditChains(db, { key: KEY, tenantId: tenant });
  expect(results).toEqual([expect.objectContaining({ status: 'anchored' })]);
  return results;
}

describe('audit chain tampering', () => {
  let database: TestDatabase;
  let url: string;
  let db: Db;

  beforeAll(async () => {
    database = await createTestDatabase();
    ({ url, db } = database);
  });
  afterAll(async () => {
    await database.drop();
  });

  it('should verify an untouched, anchored chain, naming the rows not yet anchored as information', async () => {
    await seedChain(db, 'clean');
    await anchor(db, 'clean');
    await seedChain(db, 'clean', 1, 2);
    const run = await verify(url, 'clean');
    expect(run.code).toBe(0);
    expect(run.out).toContain('✓ clean: 14 rows verified; anchored up to position 12 (1 anchor checked)');
    expect(run.out).toContain(
      '· clean: 2 rows not yet anchored (positions 13–14): information, not a failure',
    );
    expect(run.out).not.toContain('anchors not checked');
  });

  it('should say plainly that anchors were not checked when there is no key, and still pass a sound chain', async () => {
    const run = await verify(url, 'clean', { withKey: false });
    expect(run.code).toBe(0);
    expect(run.out).toContain('✓ clean: 14 rows verified\n');
    expect(run.out).toContain('! anchors not checked: WARDEN_AUDIT_KEY is not set');
  });

  it('should name a row whose payload was edited', async () => {
    await seedChain(db, 'payload');
    const victim = await rowAt(db, 'payload', 6);
    await sql`update task_audits set payload = jsonb_set(payload, '{reason}', '"nothing to see"') where audit_id = ${victim.audit_id}`.execute(
      db,
    );
    const run = await verify(url, 'payload');
    expect(run.code).toBe(1);
    expect(run.out).toContain(
      `✗ payload: broken at audit_id ${victim.audit_id} (chain position 6): content does not match its hash: the row was edited`,
    );
  });

  it('should name a row whose created_at was edited', async () => {
    await seedChain(db, 'created');
    const victim = await rowAt(db, 'created', 3);
    await sql`update task_audits set created_at = created_at - interval '1 day' where audit_id = ${victim.audit_id}`.execute(
      db,
    );
    const run = await verify(url, 'created');
    expect(run.code).toBe(1);
    expect(run.out).toContain(
      `✗ created: broken at audit_id ${victim.audit_id} (chain position 3): content does not match its hash: the row was edited`,
    );
  });

  it('should name a row whose audit_id was edited', async () => {
    await seedChain(db, 'renumbered');
    const victim = await rowAt(db, 'renumbered', 4);
    const newId = Number(victim.audit_id) + 1_000_000;
    await sql`update task_audits set audit_id = ${newId} where audit_id = ${victim.audit_id}`.execute(db);
    const run = await verify(url, 'renumbered');
    expect(run.code).toBe(1);
    expect(run.out).toContain(
      `✗ renumbered: broken at audit_id ${newId} (chain position 4): content does not match its hash: the row was edited`,
    );
  });

  it('should refuse a forged row with no chain position', async () => {
    await seedChain(db, 'nullpos', 1, 2);
    await expect(
      sql`insert into task_audits (tenant_id, task_id, event_type, level, payload, prev_hash, row_hash, hash_version)
          values ('nullpos', 'task-0', 'GATE_RELEASED', 'info', '{}', ${GENESIS_HASH}, ${GENESIS_HASH}, 2)`.execute(
        db,
      ),
    ).rejects.toMatchObject({ code: '23502', column: 'chain_seq' });
    expect((await verify(url, 'nullpos')).code).toBe(0);
  });

  it('should name a forged row appended with a recomputed (unkeyed) hash past the head', async () => {
    await seedChain(db, 'appended');
    await anchor(db, 'appended');
    const last = await rowAt(db, 'appended', 12);
    const forged = await forgeRowAfter(db, last, { reason: 'approved by nobody' });
    const run = await verify(url, 'appended');
    expect(run.code).toBe(1);
    expect(run.out).toContain(
      `✗ appended: broken at audit_id ${forged} (chain position 13): the chain head is at position 12 but rows go on to 13: the head was rewound, or rows 13–13 were added outside Warden`,
    );
  });

  it('should name a forged append that also moved the head as not yet anchored (the window until the next anchor)', async () => {
    await seedChain(db, 'appended-head');
    await anchor(db, 'appended-head');
    const last = await rowAt(db, 'appended-head', 12);
    await forgeRowAfter(db, last, { reason: 'approved by nobody' }, { moveHead: true });
    // Indistinguishable from a real append until the next anchor: the window the anchor interval bounds.
    const run = await verify(url, 'appended-head');
    expect(run.code).toBe(0);
    expect(run.out).toContain('· appended-head: 1 row not yet anchored (positions 13–13)');
  });

  it('should name the position of a deleted middle row', async () => {
    await seedChain(db, 'gap');
    await anchor(db, 'gap');
    const next = await rowAt(db, 'gap', 8);
    await sql`delete from task_audits where tenant_id = 'gap' and chain_seq = 7`.execute(db);
    const run = await verify(url, 'gap');
    expect(run.code).toBe(1);
    expect(run.out).toContain(
      `✗ gap: broken at audit_id ${next.audit_id} (chain position 8): rows are missing at chain position 7 (before audit_id ${next.audit_id}): deleted`,
    );
  });

  it('should name a deleted last row whose head was not rewound', async () => {
    await seedChain(db, 'truncated');
    await sql`delete from task_audits where tenant_id = 'truncated' and chain_seq = 12`.execute(db);
    const run = await verify(url, 'truncated', { withKey: false });
    expect(run.code).toBe(1);
    expect(run.out).toContain(
      '✗ truncated: broken at chain position 12: the chain head is at position 12 but the rows end at 11: rows 12–12 were deleted',
    );
  });

  it('should name a deleted last row whose head was rewound, once the row was anchored', async () => {
    await seedChain(db, 'rewound');
    await anchor(db, 'rewound');
    const previous = await rowAt(db, 'rewound', 11);
    await sql`delete from task_audits where tenant_id = 'rewound' and chain_seq = 12`.execute(db);
    await sql`update audit_chain_heads set chain_seq = 11, row_hash = ${previous.row_hash} where tenant_id = 'rewound'`.execute(
      db,
    );
    const run = await verify(url, 'rewound');
    expect(run.code).toBe(1);
    expect(run.out).toMatch(
      /✗ rewound: broken at chain position 12: anchor at chain position 12 \(signed .* by key [0-9a-f]{16}\): no row at that position any more: anchored rows were deleted/,
    );
    // Without the key the truncated chain is consistent: only the anchor knew there was a row 12.
    expect((await verify(url, 'rewound', { withKey: false })).code).toBe(0);
  });

  it('should name a head rewound below the rows', async () => {
    await seedChain(db, 'behind');
    const row9 = await rowAt(db, 'behind', 9);
    const row10 = await rowAt(db, 'behind', 10);
    await sql`update audit_chain_heads set chain_seq = 9, row_hash = ${row9.row_hash} where tenant_id = 'behind'`.execute(
      db,
    );
    const run = await verify(url, 'behind', { withKey: false });
    expect(run.code).toBe(1);
    expect(run.out).toContain(
      `✗ behind: broken at audit_id ${row10.audit_id} (chain position 10): the chain head is at position 9 but rows go on to 12`,
    );
  });

  it('should still check a tenant whose chain-head row was deleted, and name it', async () => {
    await seedChain(db, 'headless');
    await sql`delete from audit_chain_heads where tenant_id = 'headless'`.execute(db);
    const all = await warden(url, ['audit', 'verify']);
    expect(all.code).toBe(1);
    expect(all.out).toContain(
      '✗ headless: no chain head in audit_chain_heads, but rows exist up to chain position 12: the head row was deleted',
    );
  });

  it('should name a chain recomputed without the key at its anchors, while the unkeyed checks pass', async () => {
    await seedChain(db, 'recomputed');
    await anchor(db, 'recomputed');
    await seedChain(db, 'recomputed', 1, 4);
    await anchor(db, 'recomputed');
    const victim = await rowAt(db, 'recomputed', 2);
    await sql`update task_audits set payload = '{"reason":"rewritten history"}' where audit_id = ${victim.audit_id}`.execute(
      db,
    );
    await rehashFrom(db, 'recomputed', 2);

    const unkeyed = await verify(url, 'recomputed', { withKey: false });
    expect(unkeyed.code).toBe(0);
    expect(unkeyed.out).toContain('! anchors not checked');

    const keyed = await verify(url, 'recomputed');
    expect(keyed.code).toBe(1);
    const row12 = await rowAt(db, 'recomputed', 12);
    expect(keyed.out).toMatch(
      new RegExp(
        `✗ recomputed: broken at audit_id ${row12.audit_id} \\(chain position 12\\): anchor at chain position 12 \\(signed .*\\): the chain no longer hashes to it: rows at or before it were changed and the chain recomputed`,
      ),
    );
    expect(keyed.out).toMatch(
      /✗ recomputed: broken at audit_id \d+ \(chain position 16\): anchor at chain position 16/,
    );
    // The poller must not bless the rewritten chain either.
    const results = await anchorAuditChains(db, { key: KEY, tenantId: 'recomputed' });
    expect(results).toEqual([]);
    await seedChain(db, 'recomputed', 1, 1);
    expect(await anchorAuditChains(db, { key: KEY, tenantId: 'recomputed' })).toEqual([
      expect.objectContaining({
        status: 'broken',
        problem: expect.objectContaining({ kind: 'anchor_mismatch' }),
      }),
    ]);
  });

  it('should name an anchor that was forged or edited, and one signed by a key that is not configured', async () => {
    await seedChain(db, 'anchors');
    await anchor(db, 'anchors');
    await sql`update audit_anchors set row_hash = ${'f'.repeat(64)} where tenant_id = 'anchors'`.execute(db);
    const forged = await verify(url, 'anchors');
    expect(forged.code).toBe(1);
    expect(forged.out).toMatch(
      /✗ anchors: broken at chain position 12: anchor at chain position 12 .*: invalid signature: the anchor was forged or edited/,
    );

    const other = await verify(url, 'anchors', { key: 'another-key-entirely-0123456789abcdef' });
    expect(other.code).toBe(1);
    expect(other.out).toContain(
      'no configured key has that id: add the retired key to WARDEN_AUDIT_KEY, or the anchor was forged',
    );
  });

  it('should report every tenant in one run, as JSON too, and exit 1 from the real command line', async () => {
    const json = await warden(url, ['audit', 'verify', '--json']);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.out) as {
      ok: boolean;
      anchors_checked: boolean;
      tenants: { tenant_id: string; problems: { kind: string }[] }[];
    };
    expect(report).toMatchObject({ ok: false, anchors_checked: true });
    const kinds = Object.fromEntries(report.tenants.map((t) => [t.tenant_id, t.problems.map((p) => p.kind)]));
    expect(kinds).toMatchObject({
      clean: [],
      payload: ['edited'],
      created: ['edited'],
      renumbered: ['edited'],
      appended: ['head_behind'],
      'appended-head': [],
      gap: ['gap'],
      truncated: ['head_ahead'],
      rewound: ['anchor_row_missing'],
      behind: ['head_behind'],
      headless: ['head_missing'],
      anchors: ['anchor_forged'],
    });
    expect(kinds.recomputed).toEqual(expect.arrayContaining(['anchor_mismatch']));

    const child = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve, reject) => {
        const proc = spawn(
          process.execPath,
          ['--import', 'tsx', 'packages/cli/src/main.ts', 'audit', 'verify', '--tenant', 'gap'],
          {
            cwd: repoRoot,
            env: { ...process.env, DATABASE_URL: url, WARDEN_AUDIT_KEY: SECRET },
          },
        );
        let stdout = '';
        let stderr = '';
        proc.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        proc.on('error', reject);
        proc.on('close', (code) => resolve({ code, stdout, stderr }));
      },
    );
    expect(child.code).toBe(1);
    expect(child.stdout).toContain('rows are missing at chain position 7');
    expect(child.stderr).toContain('error: audit chain broken for 1 tenant: gap');
  }, 60_000);

  describe('when the attacker can also change the schema', () => {
    let own: TestDatabase;

    beforeAll(async () => {
      own = await createTestDatabase();
      await seedChain(own.db, 'ddl');
      await sql`alter table task_audits alter column chain_seq drop not null`.execute(own.db);
      await sql`alter table task_audits drop constraint task_audits_chain_key`.execute(own.db);
    });
    afterAll(async () => {
      await own.drop();
    });

    it('should name the dropped constraints, a row with no position and a duplicate position', async () => {
      const row5 = await rowAt(own.db, 'ddl', 5);
      const nullRow = await sql<{ audit_id: string }>`
        insert into task_audits (tenant_id, task_id, event_type, level, payload, prev_hash, row_hash, hash_version, chain_seq)
        values ('ddl', 'task-0', 'GATE_RELEASED', 'info', '{}', ${GENESIS_HASH}, ${GENESIS_HASH}, 2, null) returning audit_id`.execute(
        own.db,
      );
      const twin = await sql<{ audit_id: string }>`
        insert into task_audits (tenant_id, task_id, event_type, level, decision_id, event_id, source_event_ts, processed_at, payload, created_at,
                                 chain_seq, prev_hash, row_hash, hash_version)
        select tenant_id, task_id, event_type, level, null, event_id, source_event_ts, processed_at, '{"twin":true}', created_at,
               chain_seq, prev_hash, row_hash, hash_version from task_audits where audit_id = ${row5.audit_id}
        returning audit_id`.execute(own.db);
      const run = await verify(own.url, 'ddl', { withKey: false });
      expect(run.code).toBe(1);
      expect(run.out).toContain(
        '✗ task_audits.chain_seq accepts NULL again: its NOT NULL constraint was dropped',
      );
      expect(run.out).toContain(
        '✗ the unique constraint task_audits_chain_key (one row per tenant and chain position) was dropped',
      );
      expect(run.out).toContain(
        `✗ ddl: broken at audit_id ${nullRow.rows[0]!.audit_id}: audit_id ${nullRow.rows[0]!.audit_id} has no chain position: inserted outside Warden (forged)`,
      );
      const twinId = twin.rows[0]!.audit_id;
      expect(run.out).toContain(
        `✗ ddl: broken at audit_id ${twinId} (chain position 5): duplicate chain position 5: audit_id ${twinId} and audit_id ${row5.audit_id} claim it`,
      );
      expect(run.out).toContain(
        `✗ ddl: broken at audit_id ${twinId} (chain position 5): content does not match its hash: the row was edited`,
      );
    });
  });
});

/**
 * Appends a row after `last` the way an attacker with table access would: a fresh id, the right position and
 * an unkeyed hash that links correctly. Moves the head too when asked. Returns the new audit_id.
 */
async function forgeRowAfter(
  db: Db,
  last: { tenant_id: string; chain_seq: string; row_hash: string },
  payload: Record<string, unknown>,
  options: { moveHead?: boolean } = {},
): Promise<string> {
  const seq = Number(last.chain_seq) + 1;
  const { rows } = await sql<{
    id: string;
    now: Date;
  }>`select nextval('task_audits_audit_id_seq')::text as id, date_trunc('milliseconds', now()) as now`.execute(
    db,
  );
  const { id, now } = rows[0]!;
  const content = toAuditChainContent({
    hash_version: AUDIT_HASH_VERSION,
    audit_id: id,
    tenant_id: last.tenant_id,
    chain_seq: seq,
    task_id: 'task-0',
    event_type: 'GATE_RELEASED',
    level: 'info',
    decision_id: null,
    event_id: null,
    source_event_ts: null,
    processed_at: now,
    payload,
    created_at: now,
  });
  const hash = auditRowHash(content, last.row_hash);
  await db
    .insertInto('task_audits')
    .values({
      ...content,
      payload: JSON.stringify(payload),
      processed_at: now,
      created_at: now,
      prev_hash: last.row_hash,
      row_hash: hash,
    })
    .execute();
  if (options.moveHead)
    await db
      .updateTable('audit_chain_heads')
      .set({ chain_seq: seq, row_hash: hash })
      .where('tenant_id', '=', last.tenant_id)
      .execute();
  return id;
}

describe('audit chain on the normal paths', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });

  it('should chain supervisor decisions and a gate release into one chain that verifies and anchors', async () => {
    const { db, url } = database;
    const processor = await createTestProcessor(db);
    await processor.processEvents([
      taskEvent('acme', 'create-1', { task_id: 'paused-task', event_type: 'TASK_CREATED' }),
      taskEvent('acme', 'step-1', {
        task_id: 'paused-task',
        event_type: 'TASK_STEP_COMPLETED',
        payload: { risk_indicators: { error_rate: 0.9, resource_usage: 0.95 } },
      }),
      taskEvent('acme', 'state-1', { task_id: 'other-task' }),
    ]);
    const gate = await db
      .selectFrom('task_gates')
      .select('gate_id')
      .where('tenant_id', '=', 'acme')
      .where('task_id', '=', 'paused-task')
      .executeTakeFirstOrThrow();
    const released = await db.transaction().execute((trx) =>
      releaseGate(trx, {
        tenantId: 'acme',
        taskId: 'paused-task',
        gate: gate.gate_id,
        releasedBy: 'key-1',
      }),
    );
    expect(released.status).toBe('released');

    const rows = await db
      .selectFrom('task_audits')
      .selectAll()
      .where('tenant_id', '=', 'acme')
      .orderBy('chain_seq')
      .execute();
    expect(rows.map((r) => r.event_type)).toContain('GATE_RELEASED');
    expect(rows.every((r) => r.hash_version === 2)).toBe(true);

    expect(await warden(url, ['audit', 'anchor'], { withKey: false })).toMatchObject({
      code: 2,
      err: expect.stringContaining('WARDEN_AUDIT_KEY is not set'),
    });
    const anchored = await warden(url, ['audit', 'anchor']);
    expect(anchored).toMatchObject({
      code: 0,
      out: `✓ acme: anchored at chain position ${rows.length} (rows 1–${rows.length} verified)\n`,
    });
    expect((await warden(url, ['audit', 'anchor'])).out).toBe('every audit chain is anchored at its head\n');
    const run = await warden(url, ['audit', 'verify']);
    expect(run.code).toBe(0);
    expect(run.out).toBe(
      `✓ acme: ${rows.length} rows verified; anchored up to position ${rows.length} (1 anchor checked)\n`,
    );
  });

  it('should hash every column task_audits has (a new column must join the hashed content)', async () => {
    const { rows } = await sql<{ column_name: string }>`
      select column_name from information_schema.columns where table_schema = current_schema() and table_name = 'task_audits'`.execute(
      database.db,
    );
    const row = await database.db.selectFrom('task_audits').selectAll().limit(1).executeTakeFirstOrThrow();
    const hashed = Object.keys(toAuditChainContent(row));
    expect(rows.map((r) => r.column_name).sort()).toEqual([...hashed, 'prev_hash', 'row_hash'].sort());
  });

  it('should anchor from the supervisor poller every interval, only the chains that grew', async () => {
    const { db } = database;
    const { InboxPoller } = await import('@warden/supervisor-worker');
    const { WardenQueues, createRedis } = await import('@warden/queue');
    const { testServers, testQueuePrefix } = await import('@warden/testing');
    const { createLogger } = await import('@warden/observability');
    const redis = createRedis(testServers.redisUrl, 'general');
    const queues = new WardenQueues({ connection: redis, prefix: testQueuePrefix() });
    try {
      const poller = new InboxPoller({
        db,
        queues,
        logger: createLogger({ service: 'test', level: 'silent' }),
        intervalMs: 3_600_000,
        graceMs: 3_600_000,
        batchSize: 50,
        maxAttempts: 5,
        retentionDays: 7,
        auditKeys: KEYS,
        anchorIntervalMs: 60_000,
      });
      await seedChain(db, 'acme', 1, 3);
      await seedChain(db, 'globex', 1, 2);
      const t0 = Date.now();
      expect((await poller.pollOnce(t0)).anchored).toBe(2);
      await seedChain(db, 'globex', 1, 2);
      expect((await poller.pollOnce(t0 + 1000)).anchored).toBe(0); // within the interval
      expect((await poller.pollOnce(t0 + 61_000)).anchored).toBe(1); // only globex grew
      const verified = await verifyAuditChain(db, 'globex', { keys: KEYS });
      expect(verified).toMatchObject({
        problems: [],
        anchors: { checked: true, count: 2, last_anchored_seq: 4, unanchored_rows: 0 },
      });
    } finally {
      await queues.close();
      redis.disconnect();
    }
  });

  it('should keep one gap-free chain, ids in chain order, under concurrent appenders', async () => {
    const { db } = database;
    const writers = Array.from({ length: 12 }, (_, w) =>
      db.transaction().execute((trx) =>
        appendAudits(
          trx,
          // Some batches write two tenants at once (sorted locking: no deadlock).
          Array.from({ length: 5 }, (_, i) =>
            audit(i % 2 === 0 || w % 3 !== 0 ? 'busy' : 'busy-2', w * 10 + i),
          ),
        ),
      ),
    );
    const processor = await createTestProcessor(db);
    await Promise.all([
      ...writers,
      ...[0, 1, 2].map((b) =>
        processor.processEvents(
          Array.from({ length: 6 }, (_, i) =>
            taskEvent('busy', `busy-evt-${b}-${i}`, { task_id: `t-${i % 2}` }),
          ),
        ),
      ),
    ]);
    const rows = await db
      .selectFrom('task_audits')
      .select(['chain_seq', 'audit_id'])
      .where('tenant_id', '=', 'busy')
      .orderBy('chain_seq')
      .execute();
    expect(rows.map((r) => Number(r.chain_seq))).toEqual(rows.map((_, i) => i + 1));
    const ids = rows.map((r) => BigInt(r.audit_id));
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1]!)).toBe(true);
    for (const tenant of ['busy', 'busy-2']) {
      expect(await verifyAuditChain(db, tenant), tenant).toMatchObject({
        problems: [],
        head: { chain_seq: tenant === 'busy' ? rows.length : expect.any(Number) },
      });
    }
  });
});

describe('audit chain across the upgrade', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase({ migrated: false });
  });
  afterAll(async () => {
    await database.drop();
  });

  it('should keep chains written before it verifiable, set rows without a position aside, and continue with version 2', async () => {
    const { db, url } = database;
    const before = Object.keys(migrations).filter((name) => name < '2026_12_01_0001_harden_audit_chain');
    const migrator = new Migrator({
      db,
      provider: {
        getMigrations: async () => Object.fromEntries(before.map((name) => [name, migrations[name]!])),
      },
      migrationTableName: 'warden_migrations',
      migrationLockTableName: 'warden_migrations_lock',
    });
    const { error } = await migrator.migrateToLatest();
    expect(error).toBeUndefined();

    // What the old appendAudits wrote: version-1 hashes that did not cover audit_id and created_at.
    let prev = GENESIS_HASH;
    for (let seq = 1; seq <= 3; seq++) {
      const a = audit('legacy', seq);
      const processed = new Date(Date.UTC(2026, 0, 2, 0, 0, seq));
      const content = toAuditChainContent({
        ...a,
        hash_version: 1,
        audit_id: 0,
        chain_seq: seq,
        processed_at: processed,
        created_at: processed,
      });
      const hash = auditRowHash(content, prev);
      await sql`insert into task_audits (tenant_id, task_id, event_type, level, decision_id, event_id, source_event_ts, processed_at, payload, chain_seq, prev_hash, row_hash)
                values (${a.tenant_id}, ${a.task_id}, ${a.event_type}, ${a.level}, ${a.decision_id}, ${a.event_id}, ${a.source_event_ts}, ${processed},
                        ${JSON.stringify(a.payload)}, ${seq}, ${prev}, ${hash})`.execute(db);
      prev = hash;
    }
    await sql`insert into audit_chain_heads (tenant_id, chain_seq, row_hash) values ('legacy', 3, ${prev})`.execute(
      db,
    );
    await sql`insert into task_audits (tenant_id, task_id, event_type, level, payload) values ('legacy', 'task-x', 'SUPERVISOR_ALLOWED', 'info', '{"forged":true}')`.execute(
      db,
    );

    await migrateToLatest(db);
    expect(
      await sql`select 1 from task_audits where chain_seq is null`.execute(db).then((r) => r.rows),
    ).toEqual([]);
    expect(await db.selectFrom('task_audits').select('hash_version').orderBy('chain_seq').execute()).toEqual(
      [1, 1, 1].map((v) => ({ hash_version: v })),
    );

    await db.transaction().execute((trx) => appendAudits(trx, [audit('legacy', 4), audit('legacy', 5)]));
    const verified = await verifyAuditChain(db, 'legacy');
    expect(verified).toMatchObject({ rows: 5, problems: [], head: { chain_seq: 5 } });

    const run = await warden(url, ['audit', 'verify']);
    expect(run.code).toBe(1);
    expect(run.out).toContain(
      '✗ 1 audit row(s) without a chain position (tenants legacy) were moved to task_audits_unchained by the upgrade: written outside Warden or forged; review them, then delete them from task_audits_unchained',
    );
    expect(run.out).toContain('✓ legacy: 5 rows verified; no anchors yet');

    // A version-2 row turned back into version 1 (to shed the audit_id/created_at coverage) is named.
    await sql`update task_audits set hash_version = 1 where tenant_id = 'legacy' and chain_seq = 5`.execute(
      db,
    );
    expect((await verifyAuditChain(db, 'legacy')).problems.map((p) => p.kind)).toEqual(
      expect.arrayContaining(['version_downgrade', 'edited']),
    );
  });
});
