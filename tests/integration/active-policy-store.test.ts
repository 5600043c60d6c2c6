/**
 * ActivePolicyStore (@warden/runtime), the one mechanism behind every service's stored policy versions: it
 * loads each tenant's active version labelled with its number, follows announcements on Redis, and keeps a
 * tenant on its previous version — logged once — when the newly active one no longer parses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activatePolicyVersion, ensureTenant, insertPolicyVersion, type Db } from '@warden/db';
import { createLogger } from '@warden/observability';
import { createRedis, policyActivationChannel } from '@warden/queue';
import { ActivePolicyStore, withBootstrap } from '@warden/runtime';
import {
  createTestDatabase,
  testQueuePrefix,
  testServers,
  waitFor,
  type TestDatabase,
} from '@warden/testing';

const TENANT = 'acme';

async function storeVersion(db: Db, version: number, source: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await insertPolicyVersion(trx, {
      tenant_id: TENANT,
      kind: 'lead-rules',
      version,
      status: 'draft',
      file_version: '7',
      source,
      sha256: 'not checked by the store',
      note: null,
      base_version: version - 1 || null,
      diff: '',
      pushed_by: 'test',
      pushed_by_owner: 'test',
    });
    await activatePolicyVersion(
      trx,
      { tenant_id: TENANT, kind: 'lead-rules', version },
      { by: 'test', owner: 'test' },
    );
  });
}

describe('ActivePolicyStore', () => {
  let database: TestDatabase;
  let store: ActivePolicyStore<'lead-rules', { threshold: number; version: string }>;
  const publisher = createRedis(testServers.redisUrl, 'general');
  const prefix = testQueuePrefix();
  const logLines: Array<{ level: string; msg: string; version?: number }> = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    await ensureTenant(database.db, TENANT);
    await storeVersion(database.db, 1, 'version: 7\nrules:\n  blocked_reason_spike:\n    threshold: 5\n');
    store = new ActivePolicyStore({
      db: database.db,
      kind: 'lead-rules',
      prepare: (rules) => ({ threshold: rules.rules.blocked_reason_spike.threshold, version: rules.version }),
      logger: createLogger({
        service: 'test',
        destination: { write: (line: string) => void logLines.push(JSON.parse(line)) },
      }),
      subscriber: createRedis(testServers.redisUrl, 'general'),
      prefix,
      // Far longer than any wait below: only an announcement can make the store load in time.
      pollIntervalMs: 60_000,
    });
    await store.start();
    // The subscription is not awaited by start(); announcements count once Redis has it.
    await waitFor('the store subscribed', async () => {
      const [, subscribers] = (await publisher.pubsub('NUMSUB', policyActivationChannel(prefix))) as [
        string,
        number,
      ];
      return subscribers > 0;
    });
  });
  afterAll(async () => {
    await store?.stop();
    publisher.disconnect();
    await database?.drop();
  });

  it("should load each tenant's active version at start, labelled with its stored number", () => {
    expect(store.activeVersion(TENANT)).toBe(1);
    expect(store.policyOf(TENANT)).toEqual({ threshold: 5, version: '7@v1' });
    const bootstrap = { threshold: 99, version: 'file' };
    expect(withBootstrap(store, bootstrap).policyFor(TENANT)).toEqual({ threshold: 5, version: '7@v1' });
    expect(withBootstrap(store, bootstrap).policyFor('globex')).toBe(bootstrap);
  });

  it('should load a version as soon as its activation is announced', async () => {
    await storeVersion(database.db, 2, 'version: 7\nrules:\n  blocked_reason_spike:\n    threshold: 10\n');
    await publisher.publish(
      policyActivationChannel(prefix),
      JSON.stringify({ tenant_id: TENANT, kind: 'lead-rules', version: 2 }),
    );
    await waitFor('version 2 loaded', async () => store.activeVersion(TENANT) === 2, { timeoutMs: 15_000 });
    expect(store.policyOf(TENANT)).toEqual({ threshold: 10, version: '7@v2' });
  });

  it('should keep the previous version, and say so once, when the active one no longer parses', async () => {
    await storeVersion(database.db, 3, 'rules:\n  blocked_reason_spike:\n    threshold: -1\n');
    await store.refresh();
    await store.refresh();
    expect(store.activeVersion(TENANT)).toBe(2);
    expect(store.policyOf(TENANT)).toEqual({ threshold: 10, version: '7@v2' });
    const errors = logLines.filter((line) => line.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      version: 3,
      msg: 'a stored lead-rules policy version cannot be loaded; the tenant keeps its previous policy',
    });
  });
});
