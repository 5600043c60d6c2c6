import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSupervisorService, loadConfig, type SupervisorService } from '@warden/supervisor-worker';
import { testServers, waitFor } from '@warden/testing';
import { call, event, startTestApi, type TestApi } from '../support/api.js';

const waitUntil = (condition: () => Promise<boolean>, timeoutMs: number) =>
  waitFor('the condition', condition, { timeoutMs, intervalMs: 100 });

describe('when a batch request becomes one queue job', () => {
  let api: TestApi;
  let supervisor: SupervisorService;

  beforeAll(async () => {
    api = await startTestApi();
    supervisor = createSupervisorService(
      loadConfig({
        DATABASE_URL: api.database.url,
        REDIS_URL: testServers.redisUrl,
        QUEUE_PREFIX: api.prefix,
        OPS_PORT: '0',
        LOG_LEVEL: 'silent',
        // A long poll interval: only the batch job itself can get these events decided in time.
        POLL_INTERVAL_MS: '3600000',
      }),
    );
    await supervisor.start();
  });
  afterAll(async () => {
    await supervisor.stop();
    await api.stop();
  });

  it('should decide every event of the batch exactly once', async () => {
    const key = await api.createKey('acme', ['events:write']);
    const events = Array.from({ length: 120 }, (_, i) =>
      event(`batch-${i}`, {
        task_id: `task-${i % 7}`,
        event_type: i % 3 === 0 ? 'TASK_CREATED' : 'TASK_STEP_COMPLETED',
      }),
    );
    const res = await call(`${api.url}/v1/events`, { key, body: { events } });
    expect(res.body).toEqual({ accepted: 120, duplicates: 0 });
    await waitUntil(async () => {
      const row = await api.db
        .selectFrom('decisions')
        .select(api.db.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow();
      return Number(row.n) === 120;
    }, 30_000);
    const pending = await api.db
      .selectFrom('supervisor_inbox')
      .select('event_id')
      .where('status', '!=', 'completed')
      .execute();
    expect(pending).toEqual([]);
    const audits = await api.db
      .selectFrom('task_audits')
      .select(api.db.fn.countAll<string>().as('n'))
      .where('decision_id', 'is not', null)
      .executeTakeFirstOrThrow();
    expect(Number(audits.n)).toBe(120);
  });
});
