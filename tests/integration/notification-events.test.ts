/**
 * Where notifications come from (docs/notifications.md, "Events"): each state change a person should hear
 * about writes its outbox row in the same transaction — and only then. Driven through the repositories over a
 * real database of its own; the delivery side is in notifications.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appendTriggerAudits,
  claimInboxEvents,
  dispatchNotifications,
  failClaimedEvent,
  insertLeadFindings,
  insertPendingEvents,
  openGates,
  recordLeadFindingSightings,
  warnExpiringApprovals,
  warnExpiringGates,
  type Db,
} from '@warden/db';
import { createTestDatabase, type TestDatabase } from '@warden/testing';
import { triggerAudit, type LeadFindingDraft } from '@warden/domain';
import { taskEvent } from '../support/supervisor.js';

const TENANT = 'events-acme';
const MINUTE = 60_000;

describe('notification events', () => {
  let database: TestDatabase;
  let db: Db;

  beforeAll(async () => {
    database = await createTestDatabase();
    db = database.db;
  });
  afterAll(async () => {
    await database?.drop();
  });

  /** The outbox rows written since `after` (an outbox id), oldest first. */
  async function outbox(type: string) {
    return db
      .selectFrom('notification_outbox')
      .selectAll()
      .where('tenant_id', '=', TENANT)
      .where('event_type', '=', type)
      .orderBy('outbox_id')
      .execute();
  }

  it('should record gate.opened once per gate, even when the decision is redelivered', async () => {
    const gate = {
      tenant_id: TENANT,
      task_id: 'ev-task',
      gate_id: 'ev-gate',
      checkpoint: 'open_plan',
      reason: 'rule_spec needs a person',
      decision_id: null,
      expires_at: new Date(Date.now() + 30 * MINUTE),
    };
    await db.transaction().execute((trx) => openGates(trx, [gate]));
    await db.transaction().execute((trx) => openGates(trx, [gate]));
    const rows = await outbox('gate.opened');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.payload).toEqual({
      subject: { kind: 'task', id: 'ev-task' },
      summary:
        'Task ev-task is paused at checkpoint "open_plan" and waits for a person: rule_spec needs a person',
      console_path: '/console/tasks/ev-task',
      details: {
        task_id: 'ev-task',
        gate_id: 'ev-gate',
        checkpoint: 'open_plan',
        reason: 'rule_spec needs a person',
        decision_id: null,
        expires_at: gate.expires_at.toISOString(),
      },
    });
  });

  it("should name a gate's default deadline in its notification as it was stored", async () => {
    await db.transaction().execute((trx) =>
      openGates(trx, [
        {
          tenant_id: TENANT,
          task_id: 'ev-default',
          gate_id: 'ev-default-gate',
          checkpoint: 'x',
          reason: 'r',
          decision_id: 'd-1',
        },
      ]),
    );
    const gate = await db
      .selectFrom('task_gates')
      .select('expires_at')
      .where('tenant_id', '=', TENANT)
      .where('gate_id', '=', 'ev-default-gate')
      .executeTakeFirstOrThrow();
    const notification = (await outbox('gate.opened')).find(
      (row) => (row.payload as { details: { gate_id: string } }).details.gate_id === 'ev-default-gate',
    );
    expect(notification?.payload).toMatchObject({
      details: { decision_id: 'd-1', expires_at: gate.expires_at.toISOString() },
    });
    // The column's default: about 24 hours from now.
    expect(Math.abs(gate.expires_at.getTime() - Date.now() - 24 * 3_600_000)).toBeLessThan(60_000);
  });

  it('should write nothing when the transaction rolls back', async () => {
    await expect(
      db.transaction().execute(async (trx) => {
        await openGates(trx, [
          {
            tenant_id: TENANT,
            task_id: 'ev-rb',
            gate_id: 'ev-rb-gate',
            checkpoint: 'x',
            reason: 'r',
            decision_id: null,
          },
        ]);
        throw new Error('the decision failed');
      }),
    ).rejects.toThrow('the decision failed');
    const rows = await outbox('gate.opened');
    expect(rows.map((r) => (r.payload as { subject: { id: string } }).subject.id)).not.toContain('ev-rb');
  });

  it('should warn once that a gate expires soon, not earlier than asked', async () => {
    await db
      .insertInto('tasks')
      .values({ tenant_id: TENANT, task_id: 'ev-task', status: 'paused', metadata: '{}' })
      .execute();
    const now = new Date();
    expect(await warnExpiringGates(db, { now, withinMs: 10 * MINUTE })).toBe(0);
    const warned = await Promise.all([
      warnExpiringGates(db, { now, withinMs: 60 * MINUTE }),
      warnExpiringGates(db, { now, withinMs: 60 * MINUTE }),
    ]);
    expect(warned[0]! + warned[1]!).toBe(1);
    expect(await warnExpiringGates(db, { now, withinMs: 60 * MINUTE })).toBe(0);
    expect(await outbox('gate.expiring')).toHaveLength(1);
  });

  it('should warn once that an approval expires soon', async () => {
    await db
      .insertInto('changesets')
      .values({
        tenant_id: TENANT,
        changeset_id: 'ev-cs',
        plan_id: 'p',
        workspace: 'app',
        generated_by: 'agent',
        checksum: 'c',
        plan_hash: 'h',
        idempotency_key: 'k',
        fingerprint: 'f',
        plan_json: '{}',
        changes_json: '[]',
        verdict: 'NEED_APPROVAL',
        risk_effective: 'HIGH',
        verdict_detail: '{}',
        policy_hash: 'x',
        status: 'pending',
        approval_state: 'pending',
        approval_expires_at: new Date(Date.now() + 20 * MINUTE),
        submitted_by: 'api_key:agent',
      })
      .execute();
    expect(await warnExpiringApprovals(db, { withinMs: 10 * MINUTE })).toBe(0);
    expect(await warnExpiringApprovals(db, { withinMs: 30 * MINUTE })).toBe(1);
    expect(await warnExpiringApprovals(db, { withinMs: 30 * MINUTE })).toBe(0);
    const [row] = await outbox('changeset.approval_expiring');
    expect(row!.payload).toMatchObject({ subject: { kind: 'changeset', id: 'ev-cs' } });
  });

  it('should record inbox.event_dead when an event dies, and not when it only failed', async () => {
    const events = ['ev-dead', 'ev-failed'].map((id) => taskEvent(TENANT, id, { task_id: 'ev-inbox' }));
    await insertPendingEvents(db, events);
    const claims = await claimInboxEvents(
      db,
      events.map((e) => ({ tenant_id: TENANT, event_id: e.event_id })),
      30_000,
    );
    for (const claim of claims) {
      await failClaimedEvent(db, claim, 'policy crashed: secret payload detail', {
        maxAttempts: claim.event_id === 'ev-dead' ? 1 : 5,
        retryDelayMs: 1000,
      });
    }
    const rows = await outbox('inbox.event_dead');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.payload).toMatchObject({
      subject: { kind: 'inbox_event', id: 'ev-dead' },
      details: { task_id: 'ev-inbox', attempts: 1 },
    });
    // The error (the agent's data may be in it) stays out of the notification.
    expect(JSON.stringify(rows[0]!.payload)).not.toContain('secret payload detail');
  });

  it("should record a trigger's breaker opening and migration rollback, not its other audits", async () => {
    await db
      .transaction()
      .execute((trx) =>
        appendTriggerAudits(trx, TENANT, [
          triggerAudit('nightly-report', 'CIRCUIT_BREAKER_OPENED', 'error', { reason: 'failure rate 0.8' }),
          triggerAudit('nightly-report', 'CIRCUIT_BREAKER_CLOSED', 'info', {}),
          triggerAudit('nightly-report', 'TRIGGER_PAUSED', 'info', {}),
          triggerAudit('nightly-report', 'MIGRATION_ROLLED_BACK', 'warn', { red_line: 'consistency' }),
        ]),
      );
    const [breaker] = await outbox('trigger.breaker_opened');
    expect(breaker!.payload).toMatchObject({
      subject: { kind: 'trigger', id: 'nightly-report' },
      summary: expect.stringContaining('failure rate 0.8'),
    });
    expect(await outbox('trigger.migration_rolled_back')).toHaveLength(1);
  });

  it('should record a CRITICAL or HIGH finding opening or coming back, never a lower one', async () => {
    const draft = (fingerprint: string, severity: LeadFindingDraft['severity']): LeadFindingDraft => ({
      fingerprint,
      rule_code: 'BLOCKED_REASON_SPIKE' as LeadFindingDraft['rule_code'],
      severity,
      title: `spike ${fingerprint}`,
      description: 'd',
      window_kind: 'hourly',
      dimensions: {},
      evidence: {
        counts: {},
        thresholds: {},
        sample_decision_ids: [],
        sample_task_ids: [],
        window: { start: '2026-12-04T00:00:00Z', end: '2026-12-04T01:00:00Z' },
      },
    });
    const now = new Date();
    await db.transaction().execute((trx) =>
      insertLeadFindings(trx, TENANT, [draft('fp-high', 'HIGH'), draft('fp-low', 'LOW')], {
        now,
        scanId: null,
      }),
    );
    const opened = await outbox('finding.opened');
    expect(opened.map((r) => (r.payload as { subject: { id: string } }).subject.id)).toEqual(['fp-high']);

    const sighting = (fingerprint: string, clearResolution: boolean) => ({
      fingerprint,
      status: 'open' as const,
      clearSilence: false,
      clearResolution,
      severity: 'HIGH' as const,
      title: 't',
      description: 'd',
      evidence: draft(fingerprint, 'HIGH').evidence,
    });
    await db
      .transaction()
      .execute((trx) =>
        recordLeadFindingSightings(trx, TENANT, [sighting('fp-high', false)], { now, scanId: null }),
      );
    expect(await outbox('finding.regressed')).toHaveLength(0);
    await db
      .transaction()
      .execute((trx) =>
        recordLeadFindingSightings(trx, TENANT, [sighting('fp-high', true)], { now, scanId: null }),
      );
    const [regressed] = await outbox('finding.regressed');
    expect(regressed!.payload).toMatchObject({
      subject: { kind: 'finding', id: 'fp-high' },
      details: { code: 'BLOCKED_REASON_SPIKE' },
    });
  });

  it('should fan out nothing when the tenant has no channel, and mark the rows dispatched', async () => {
    expect(await dispatchNotifications(db)).toEqual([]);
    const left = await db
      .selectFrom('notification_outbox')
      .select('outbox_id')
      .where('dispatched_at', 'is', null)
      .execute();
    expect(left).toEqual([]);
  });
});
