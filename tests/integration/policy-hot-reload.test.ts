import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activatePolicyVersion } from '@warden/db';
import { call, startTestApi, type TestApi } from '../support/api.js';
import { POLICY_FILE, startTestSupervisor, waitFor, type TestSupervisor } from '../support/supervisor.js';
import { withEchoForbidden } from '../support/policies.js';

const TENANT = 'acme';

/** A new task whose command is `echo hi`: allowed by the bootstrap policy, a redline once version 2 is active. */
function echoTask(id: string) {
  return {
    event_id: `evt-${id}`,
    task_id: `task-${id}`,
    event_type: 'TASK_CREATED',
    payload: {
      agent_spec: { name: 'greeter', capabilities: [] },
      command_spec: { name: 'greet', command: 'echo', args: ['hi'] },
    },
  };
}

describe('a newly active policy version across two supervisor processes', () => {
  let api: TestApi;
  let supervisors: TestSupervisor[];
  let alice: string;
  let bob: string;
  let agent: string;
  let otherAgent: string;

  beforeAll(async () => {
    api = await startTestApi();
    alice = await api.createKey(TENANT, ['policies:write'], 'alice');
    bob = await api.createKey(TENANT, ['policies:approve'], 'bob');
    agent = await api.createKey(TENANT, ['events:write'], 'agent');
    otherAgent = await api.createKey('globex', ['events:write'], 'agent');
    // Polling every 1 s: the announcement is what makes the reload fast; the poll is the fallback.
    const env = { POLICY_POLL_INTERVAL_MS: '1000', POLL_INTERVAL_MS: '500', POLL_GRACE_MS: '200' };
    supervisors = await Promise.all(
      [0, 1].map(() => startTestSupervisor({ databaseUrl: api.database.url, prefix: api.prefix, env })),
    );
  });
  afterAll(async () => {
    await Promise.all(supervisors.map((s) => s.stop()));
    await api.stop();
  });

  const versionsIn = () => supervisors.map((s) => s.service.policies()!.activeVersion(TENANT));

  it('should decide every event under exactly one version, and every event after the reload under the new one', async () => {
    const pushed = await call(`${api.url}/v1/policies`, {
      key: alice,
      body: { source: withEchoForbidden(await readFile(POLICY_FILE, 'utf8')) },
    });
    expect(pushed.status).toBe(201);
    await waitFor('both supervisors on the stored bootstrap version', async () =>
      versionsIn().every((v) => v === 1),
    );

    // Events keep arriving while the version changes under both processes.
    let sending = true;
    let sent = 0;
    const acceptedAfterReload: string[] = [];
    let reloaded = false;
    const sender = (async () => {
      while (sending) {
        const id = String(sent++);
        const answer = await call(`${api.url}/v1/events`, { key: agent, body: echoTask(id) });
        expect(answer.status).toBe(202);
        if (reloaded) acceptedAfterReload.push(`evt-${id}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 800));

    const activatedAt = Date.now();
    const activated = await call(`${api.url}/v1/policies/supervisor/versions/2/activate`, {
      key: bob,
      body: {},
    });
    expect(activated.status).toBe(200);
    await waitFor('both supervisors on version 2', async () => versionsIn().every((v) => v === 2), {
      timeoutMs: 5000,
    });
    const reloadMs = Date.now() - activatedAt;
    reloaded = true;
    await new Promise((resolve) => setTimeout(resolve, 800));
    sending = false;
    await sender;
    // Another tenant has no stored version: the bootstrap file still decides for it.
    await call(`${api.url}/v1/events`, { key: otherAgent, body: echoTask('globex') });

    await waitFor('every event decided', async () => {
      const row = await api.db
        .selectFrom('decisions')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow();
      return Number(row.n) === sent + 1;
    });
    const decisions = await api.db
      .selectFrom('decisions')
      .select(['tenant_id', 'event_id', 'decision_type', 'policy_version', 'findings'])
      .execute();

    expect(reloadMs).toBeLessThan(5000);
    const byVersion = { v1: 0, v2: 0 };
    for (const d of decisions.filter((d) => d.tenant_id === TENANT)) {
      const codes = (d.findings as Array<{ code: string }>).map((f) => f.code);
      // Each decision names one version, and what it decided is what that version decides: never a mix.
      if (d.policy_version.endsWith('@v2')) {
        byVersion.v2++;
        expect([d.event_id, d.decision_type, codes]).toEqual([
          d.event_id,
          'BLOCK',
          ['REDLINE_FORBIDDEN_COMMAND'],
        ]);
      } else {
        byVersion.v1++;
        expect(d.policy_version).toMatch(/@v1$/);
        expect([d.event_id, d.decision_type, codes]).toEqual([d.event_id, 'ALLOW', []]);
      }
    }
    expect(byVersion.v1).toBeGreaterThan(0);
    expect(byVersion.v2).toBeGreaterThan(0);
    const afterReload = new Set(acceptedAfterReload);
    expect(afterReload.size).toBeGreaterThan(0);
    for (const d of decisions.filter((d) => afterReload.has(d.event_id)))
      expect(d.policy_version).toMatch(/@v2$/);
    const globex = decisions.find((d) => d.tenant_id === 'globex')!;
    expect(globex.decision_type).toBe('ALLOW');
    expect(globex.policy_version).not.toContain('@v');

    // The audit row of each decision records the same version as the decision.
    const audits = await api.db
      .selectFrom('task_audits')
      .select(['event_id', 'payload'])
      .where('tenant_id', '=', TENANT)
      .where('decision_id', 'is not', null)
      .execute();
    const versionOf = new Map(decisions.map((d) => [d.event_id, d.policy_version]));
    for (const audit of audits)
      expect((audit.payload as { policy_version: string }).policy_version).toBe(
        versionOf.get(audit.event_id!),
      );

    // A backtest of version 2 over what was archived: every event the bootstrap version allowed would have
    // been blocked, and what version 2 blocked stays blocked.
    const backtest = await call(`${api.url}/v1/policies/backtests`, {
      key: alice,
      body: { version: 2, since: '1h' },
    });
    expect(backtest.status).toBe(200);
    const matrix = Object.fromEntries(
      backtest.body.matrix.map((c: { recorded: string; candidate: string; count: number }) => [
        `${c.recorded}->${c.candidate}`,
        c.count,
      ]),
    );
    expect(matrix).toEqual({ 'ALLOW->BLOCK': byVersion.v1, 'BLOCK->BLOCK': byVersion.v2 });
    expect(backtest.body.tasks_blocked_earlier_count).toBe(byVersion.v1);
    const both = await call(`${api.url}/v1/policies/backtests`, {
      key: alice,
      body: { version: 2, source: 'version: 1\n' },
    });
    expect(both.status).toBe(400);
    const badSource = await call(`${api.url}/v1/policies/backtests`, {
      key: alice,
      body: { source: 'thresholds: 3\n' },
    });
    expect(badSource.status).toBe(400);
    expect(
      (await call(`${api.url}/v1/policies/backtests`, { key: agent, body: { version: 2 } })).status,
    ).toBe(403);
  }, 60_000);

  it('should pick up an activation whose announcement was lost, by polling', async () => {
    // Written straight into Postgres: no announcement on Redis at all.
    await api.db
      .transaction()
      .execute((trx) =>
        activatePolicyVersion(
          trx,
          { tenant_id: TENANT, kind: 'supervisor', version: 1 },
          { by: 'test', owner: 'test' },
        ),
      );
    const started = Date.now();
    await waitFor('both supervisors back on version 1', async () => versionsIn().every((v) => v === 1), {
      timeoutMs: 5000,
    });
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
