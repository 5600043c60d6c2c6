/**
 * Stored WriteGate and lead-rules versions in the running services that use them (docs/supervisor.md, "Stored
 * policy versions"): the API gates a tenant's next change set, the executor re-checks and records it, and the
 * lead miner scans with the tenant's newly active version — without a restart; a version that no longer parses
 * leaves the tenant on the one it had.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyKind } from '@warden/domain';
import { testServers } from '@warden/testing';
import {
  createLeadMinerService,
  loadConfig as loadLeadMinerConfig,
  type LeadMinerService,
} from '../../services/lead-miner/src/index.js';
import { call, startTestApi, type TestApi } from '../support/api.js';
import {
  change,
  enqueueChangeSet,
  forgeChangeSet,
  startTestExecutor,
  submission,
  tempWorkspace,
  testPolicyFile,
  waitFor,
  waitForChangeSet,
  type TempWorkspace,
  type TestExecutor,
} from '../support/executor.js';
import { LEAD_RULES_FILE, decide, supervisorFor, taskEvents } from '../support/lead.js';

const TENANT = 'acme';
// Polling every second: the announcement is what makes the reload fast; the poll is the fallback.
const POLL = { POLICY_POLL_INTERVAL_MS: '1000' };

/** Replaces the text of a stored version, as a hand edit or a schema change under it would. */
async function corruptStoredVersion(api: TestApi, kind: PolicyKind, version: number, source: string) {
  await api.db
    .updateTable('policy_versions')
    .set({ source })
    .where('tenant_id', '=', TENANT)
    .where('kind', '=', kind)
    .where('version', '=', version)
    .executeTakeFirstOrThrow();
}

describe('a stored WriteGate version in the running API and executor', () => {
  let api: TestApi;
  let executor: TestExecutor;
  let ws: TempWorkspace;
  let bootstrap: Record<string, unknown>;
  let alice: string;
  let bob: string;
  let writer: string;
  let otherWriter: string;

  beforeAll(async () => {
    const policyFile = await testPolicyFile();
    bootstrap = JSON.parse(await readFile(policyFile, 'utf8')) as Record<string, unknown>;
    api = await startTestApi({ WRITEGATE_POLICY_FILE: policyFile, ...POLL });
    ws = await tempWorkspace({});
    executor = await startTestExecutor({
      databaseUrl: api.database.url,
      prefix: api.prefix,
      workspaces: { app: ws.root },
      env: { WRITEGATE_POLICY_FILE: policyFile, ...POLL },
    });
    alice = await api.createKey(TENANT, ['policies:write'], 'alice');
    bob = await api.createKey(TENANT, ['policies:approve'], 'bob');
    writer = await api.createKey(TENANT, ['changesets:write'], 'agent');
    otherWriter = await api.createKey('globex', ['changesets:write'], 'agent');
  });
  afterAll(async () => {
    await executor?.stop();
    await api?.stop();
    await ws?.remove();
  });

  /** The bootstrap policy with `notes/**` forbidden as well: allowed by the file, denied by this version. */
  const forbiddingNotes = () =>
    JSON.stringify({
      ...bootstrap,
      forbidden_paths: [...(bootstrap.forbidden_paths as string[]), 'notes/**'],
    });
  const storedVersions = () => [
    api.service.writeGatePolicies()!.activeVersion(TENANT),
    executor.service.writeGatePolicies()!.activeVersion(TENANT),
  ];
  const submit = (key: string, id: string, path: string) =>
    call(`${api.url}/v1/changesets`, {
      key,
      body: submission({ changesetId: id, workspace: 'app', changes: [change.create(path, `${id}\n`)] }),
    });
  const stepDetail = async (tenant: string, id: string, step: string) => {
    const row = await api.db
      .selectFrom('changeset_steps')
      .select(['status', 'detail'])
      .where('tenant_id', '=', tenant)
      .where('changeset_id', '=', id)
      .where('step', '=', step)
      .orderBy('created_at', 'desc')
      .executeTakeFirstOrThrow();
    return { status: row.status, ...(row.detail as Record<string, unknown>) };
  };

  it('should gate and apply under the policy file while the tenant has no stored version', async () => {
    const answer = await submit(writer, 'before', 'notes/before.md');
    expect(answer.status).toBe(201);
    expect(answer.body.verdict).toMatchObject({ verdict: 'ALLOW', policy_version: '1' });
    await waitForChangeSet(api.db, TENANT, 'before', ['completed']);
    expect(await ws.read('notes/before.md')).toBe('before\n');
    expect(await stepDetail(TENANT, 'before', 'gated')).toMatchObject({ policy_version: '1' });
    expect(await stepDetail(TENANT, 'before', 'validating')).toMatchObject({
      status: 'ok',
      policy_version: '1',
    });
  });

  it('should deny the next change set under a newly activated version that forbids its path, without a restart', async () => {
    const pushed = await call(`${api.url}/v1/policies`, {
      key: alice,
      body: { kind: 'writegate', source: forbiddingNotes(), note: 'no notes' },
    });
    expect(pushed.status).toBe(201);
    expect(pushed.body.version).toBe(2);
    // The first push stored the file as active version 1: both services follow it.
    await waitFor('the API and the executor on stored version 1', async () =>
      storedVersions().every((v) => v === 1),
    );
    const activated = await call(`${api.url}/v1/policies/writegate/versions/2/activate`, {
      key: bob,
      body: {},
    });
    expect(activated.status).toBe(200);
    await waitFor('the API and the executor on version 2', async () =>
      storedVersions().every((v) => v === 2),
    );

    const denied = await submit(writer, 'after', 'notes/after.md');
    expect(denied.status).toBe(201);
    expect(denied.body).toMatchObject({
      status: 'denied',
      verdict: { verdict: 'DENY', policy_version: '1@v2' },
    });
    expect(denied.body.verdict.reasons).toContainEqual(
      expect.objectContaining({ code: 'FORBIDDEN_PATH', outcome: 'deny' }),
    );
    expect(await stepDetail(TENANT, 'after', 'gated')).toMatchObject({
      status: 'failed',
      policy_version: '1@v2',
    });
    const stored = await api.db
      .selectFrom('changesets')
      .select(['policy_hash', 'verdict_detail'])
      .where('tenant_id', '=', TENANT)
      .where('changeset_id', '=', 'after')
      .executeTakeFirstOrThrow();
    expect(stored.verdict_detail).toMatchObject({ policy_version: '1@v2', policy_hash: stored.policy_hash });

    // Another tenant has no stored version: the file still gates it, and the executor applies it.
    const other = await submit(otherWriter, 'globex-after', 'notes/globex.md');
    expect(other.body.verdict).toMatchObject({ verdict: 'ALLOW', policy_version: '1' });
    await waitForChangeSet(api.db, 'globex', 'globex-after', ['completed']);
    expect(await stepDetail('globex', 'globex-after', 'validating')).toMatchObject({ policy_version: '1' });
  });

  it('should have the executor re-check with the new version, refusing a change set allowed before it', async () => {
    // Put in as allowed, the way one the API allowed under version 1 would wait in the queue.
    await forgeChangeSet(
      api.db,
      TENANT,
      submission({
        changesetId: 'queued-before',
        workspace: 'app',
        changes: [change.create('notes/queued.md', 'queued\n')],
      }),
    );
    await enqueueChangeSet(api.prefix, TENANT, 'queued-before');
    const row = await waitForChangeSet(api.db, TENANT, 'queued-before', ['failed', 'completed']);
    expect(row.status).toBe('failed');
    expect(row.error_code).toBe('writegate_denied');
    expect(await stepDetail(TENANT, 'queued-before', 'validating')).toMatchObject({
      status: 'failed',
      policy_version: '1@v2',
    });
    expect(await ws.exists('notes/queued.md')).toBe(false);

    // What version 2 allows, it applies, and records the version it checked with.
    const allowed = await submit(writer, 'docs-after', 'docs/after.md');
    expect(allowed.body.verdict).toMatchObject({ verdict: 'ALLOW', policy_version: '1@v2' });
    await waitForChangeSet(api.db, TENANT, 'docs-after', ['completed']);
    expect(await stepDetail(TENANT, 'docs-after', 'validating')).toMatchObject({
      status: 'ok',
      policy_version: '1@v2',
    });
  });

  it('should keep the previous version when the newly active one no longer parses', async () => {
    const pushed = await call(`${api.url}/v1/policies`, {
      key: alice,
      body: { kind: 'writegate', source: JSON.stringify(bootstrap), note: 'notes allowed again' },
    });
    expect(pushed.status).toBe(201);
    expect(pushed.body.version).toBe(3);
    await corruptStoredVersion(api, 'writegate', 3, 'allowed_paths: [\n');
    expect(
      (await call(`${api.url}/v1/policies/writegate/versions/3/activate`, { key: bob, body: {} })).status,
    ).toBe(200);
    // A full load of what is active now, in each service: version 3 cannot be loaded, version 2 stays.
    await api.service.writeGatePolicies()!.refresh();
    await executor.service.writeGatePolicies()!.refresh();
    expect(storedVersions()).toEqual([2, 2]);

    const stillDenied = await submit(writer, 'after-corrupt', 'notes/after-corrupt.md');
    expect(stillDenied.body).toMatchObject({
      status: 'denied',
      verdict: { verdict: 'DENY', policy_version: '1@v2' },
    });
  });
});

describe('a stored lead-rules version in the running lead miner', () => {
  let api: TestApi;
  let miner: LeadMinerService;
  let alice: string;
  let bob: string;
  let runner: string;
  let bootstrap: string;

  beforeAll(async () => {
    api = await startTestApi({ LEAD_RULES_FILE, ...POLL });
    miner = createLeadMinerService(
      loadLeadMinerConfig({
        DATABASE_URL: api.database.url,
        REDIS_URL: testServers.redisUrl,
        QUEUE_PREFIX: api.prefix,
        OPS_PORT: '0',
        LOG_LEVEL: 'silent',
        LEAD_RULES_FILE,
        ...POLL,
      }),
    );
    await miner.start();
    bootstrap = await readFile(LEAD_RULES_FILE, 'utf8');
    alice = await api.createKey(TENANT, ['policies:write'], 'alice');
    bob = await api.createKey(TENANT, ['policies:approve'], 'bob');
    runner = await api.createKey(TENANT, ['lead:run', 'lead:read'], 'runner');
    // Six blocks for one redline: over the file's spike threshold (5), under the stored version's (10).
    await decide(supervisorFor(api.db), [
      ...Array.from({ length: 6 }, (_, i) => taskEvents(TENANT, `spike-${i}`, ['forbiddenCommand'])).flat(),
      ...taskEvents(
        TENANT,
        'busy',
        Array.from({ length: 34 }, () => 'stepWithWarning' as const),
      ),
    ]);
  });
  afterAll(async () => {
    await miner?.stop();
    await api?.stop();
  });

  /** A dry-run 24h scan through the API and the lead miner: what it found and the rules version it recorded. */
  async function scan(): Promise<{ raw_findings: number; rules_version: string | null }> {
    const queued = await call(`${api.url}/v1/lead/scans`, {
      key: runner,
      body: { window: '24h', dry_run: true },
    });
    expect(queued.status).toBe(202);
    const done = await waitFor(`lead scan ${queued.body.scan_id}`, async () => {
      const res = await call(`${api.url}/v1/lead/scans/${queued.body.scan_id}`, { key: runner });
      return ['completed', 'failed', 'skipped'].includes(res.body.status) ? res.body : undefined;
    });
    expect(done.status).toBe('completed');
    const row = await api.db
      .selectFrom('lead_scans')
      .select('rules_version')
      .where('scan_id', '=', queued.body.scan_id)
      .executeTakeFirstOrThrow();
    return { raw_findings: done.stats.raw_findings, rules_version: row.rules_version };
  }
  const withSpikeThreshold = (threshold: number) => {
    const changed = bootstrap.replace(/threshold: 5 #/, `threshold: ${threshold} #`);
    if (changed === bootstrap) throw new Error('the lead rules file has no spike threshold of 5 to change');
    return changed;
  };

  it('should scan with the rules file while the tenant has no stored version', async () => {
    expect(await scan()).toEqual({ raw_findings: 1, rules_version: '1' });
  });

  it('should scan the next time with a newly activated version, without a restart', async () => {
    const pushed = await call(`${api.url}/v1/policies`, {
      key: alice,
      body: { kind: 'lead-rules', source: withSpikeThreshold(10), note: 'fewer spikes' },
    });
    expect(pushed.status).toBe(201);
    expect(pushed.body.version).toBe(2);
    await waitFor('the lead miner on stored version 1', async () =>
      miner.tenantRules()!.activeVersion(TENANT) === 1 ? true : undefined,
    );
    // Stored version 1 is the file itself: the same finding, now recorded under the stored version.
    expect(await scan()).toEqual({ raw_findings: 1, rules_version: '1@v1' });

    expect(
      (await call(`${api.url}/v1/policies/lead-rules/versions/2/activate`, { key: bob, body: {} })).status,
    ).toBe(200);
    await waitFor('the lead miner on version 2', async () =>
      miner.tenantRules()!.activeVersion(TENANT) === 2 ? true : undefined,
    );
    expect(await scan()).toEqual({ raw_findings: 0, rules_version: '1@v2' });
  });

  it('should keep the previous version when the newly active one no longer parses', async () => {
    const pushed = await call(`${api.url}/v1/policies`, {
      key: alice,
      body: { kind: 'lead-rules', source: withSpikeThreshold(1), note: 'more spikes' },
    });
    expect(pushed.status).toBe(201);
    await corruptStoredVersion(api, 'lead-rules', 3, 'rules:\n  blocked_reason_spike:\n    threshold: -1\n');
    expect(
      (await call(`${api.url}/v1/policies/lead-rules/versions/3/activate`, { key: bob, body: {} })).status,
    ).toBe(200);
    await miner.tenantRules()!.refresh();
    expect(miner.tenantRules()!.activeVersion(TENANT)).toBe(2);
    expect(await scan()).toEqual({ raw_findings: 0, rules_version: '1@v2' });
  });
});
