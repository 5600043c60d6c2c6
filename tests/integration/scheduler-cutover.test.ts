/**
 * The migration cutover gate, attacked through the API (issue 11, items 1 and 2): a PATCH may not hand the served
 * output to an unproven agent by leaving shadow onto a stored weight, by lowering the bar in the same request
 * that raises the weight, or by forcing with a key that only writes triggers; and after a rollback, re-entering
 * shadow is judged on fresh comparisons only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TriggerWorker } from '@warden/client';
import { findTrigger } from '@warden/db';
import { call, startTestApi, type TestApi } from '../support/api.js';
import {
  startHandler,
  startTestScheduler,
  triggerAudits,
  waitUntil,
  type TestScheduler,
} from '../support/scheduler.js';

const TENANT = 'cutover-acme';
const NEVER = '0 0 1 1 *';

let api: TestApi;
let scheduler: TestScheduler;
let writeKey: string;
let approveKey: string;
const workers: TriggerWorker[] = [];
const agentOutput = new Map<string, () => unknown>();

beforeAll(async () => {
  api = await startTestApi();
  scheduler = await startTestScheduler({ databaseUrl: api.database.url, prefix: api.prefix });
  writeKey = await api.createKey(TENANT, ['triggers:read', 'triggers:write']);
  approveKey = await api.createKey(TENANT, ['triggers:read', 'triggers:write', 'triggers:approve']);
  workers.push(
    startHandler(api.prefix, TENANT, 'cut-agent', async (ctx) =>
      (agentOutput.get(ctx.event_name) ?? (() => ({ output: { total: 10 } })))(),
    ),
    startHandler(api.prefix, TENANT, 'cut-legacy', async () => ({ output: { total: 10 } })),
  );
});

afterAll(async () => {
  await Promise.allSettled(workers.map((w) => w.close()));
  await scheduler?.stop();
  await api?.stop();
});

const url = (path: string) => `${api.url}${path}`;
const register = async (event_name: string, extra: Record<string, unknown> = {}) => {
  const res = await call(url('/v1/triggers'), {
    key: writeKey,
    body: {
      event_name,
      expression: NEVER,
      agent: { queue: 'cut-agent' },
      fallback: { queue: 'cut-legacy' },
      retry_on_failure: false,
      mode: 'shadow',
      migration: { compare_keys: ['total'], min_samples: 3, consistency_window: 5 },
      ...extra,
    },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
};
const patch = (name: string, body: Record<string, unknown>, key = writeKey, query = '') =>
  call(url(`/v1/triggers/${name}${query}`), { method: 'PATCH', key, body });
/** A manual run through the API, waited for to its end. */
async function runOnce(name: string) {
  const run = await call(url(`/v1/triggers/${name}/run`), { key: writeKey, body: {} });
  expect(run.status).toBe(202);
  return waitUntil(`run of ${name}`, async () => {
    const res = await call(url(`/v1/triggers/${name}/executions/${run.body.execution_id}`), {
      key: writeKey,
    });
    return res.status === 200 && !['pending', 'running'].includes(res.body.status) ? res.body : undefined;
  });
}
const storedDefinition = async (name: string) => (await findTrigger(api.db, TENANT, name))!.definition;

describe('the cutover gate', () => {
  it('should refuse leaving shadow onto a defaulted weight of 1 without proven consistency', async () => {
    await register('cut-leave-shadow'); // migration_weight defaults to 1
    const res = await patch('cut-leave-shadow', { mode: 'live' });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(/served share \(by mode\).*only 0 shadow comparison/);
    expect(res.body.error.details[0].path).toBe('mode');
    expect((await storedDefinition('cut-leave-shadow')).mode).toBe('shadow');
  });

  it('should judge one PATCH that lowers the bar and raises the weight on the stored bar', async () => {
    await register('cut-lower-bar', { migration_weight: 0 });
    agentOutput.set('cut-lower-bar', () => ({ output: { total: 11 } }));
    await runOnce('cut-lower-bar'); // one unequal comparison
    agentOutput.delete('cut-lower-bar');
    await runOnce('cut-lower-bar'); // one equal: 50 % over 2
    const res = await patch('cut-lower-bar', {
      mode: 'live',
      migration_weight: 1,
      migration: { consistency_threshold: 0.5, min_samples: 2 },
    });
    expect(res.status).toBe(409);
    expect(res.body.error.message).toMatch(/only 2 shadow comparison\(s\), 3 needed/);
    // Loosening the bar alone is gated too, and a refusal names the field.
    const bar = await patch('cut-lower-bar', { migration: { consistency_threshold: 0.5 } });
    expect(bar.status).toBe(409);
    expect(bar.body.error.details[0].path).toBe('migration.consistency_threshold');
    expect(await storedDefinition('cut-lower-bar')).toMatchObject({
      mode: 'shadow',
      migration_weight: 0,
      migration: { consistency_threshold: 0.99, min_samples: 3 },
    });
  });

  it('should let only a triggers:approve key force, auditing the key and what it forced', async () => {
    await register('cut-force', { migration_weight: 0 });
    const body = { mode: 'live', migration_weight: 1, migration: { consistency_threshold: 0.1 } };
    const writer = await patch('cut-force', body, writeKey, '?force=true');
    expect(writer.status).toBe(403);
    expect(writer.body.error.message).toMatch(/triggers:approve/);
    const forced = await patch('cut-force', body, approveKey, '?force=true');
    expect(forced.status, JSON.stringify(forced.body)).toBe(200);
    const audits = await triggerAudits(api.db, TENANT, 'cut-force');
    const byType = (t: string) => audits.find((a) => a.event_type === t)!;
    expect(byType('MIGRATION_WEIGHT_CHANGED').payload).toMatchObject({ forced: true, to: 1 });
    expect(byType('MIGRATION_MODE_CHANGED').payload).toMatchObject({
      forced: true,
      from: 'shadow',
      to: 'live',
    });
    expect(byType('MIGRATION_BAR_CHANGED')).toMatchObject({ level: 'warn', payload: { forced: true } });
    const by = String(byType('MIGRATION_WEIGHT_CHANGED').payload.by);
    expect(by).toMatch(/^api_key:/);
    expect(byType('MIGRATION_BAR_CHANGED').payload.by).toBe(by);
  });
});

describe('after a rollback', () => {
  it('should judge re-entered shadow on fresh comparisons only', async () => {
    await register('cut-drift', { migration_weight: 0 });
    agentOutput.set('cut-drift', () => ({ output: { total: 11 } }));
    for (let i = 0; i < 3; i++) await runOnce('cut-drift');
    expect(await storedDefinition('cut-drift')).toMatchObject({ mode: 'live', migration_weight: 0 });

    agentOutput.delete('cut-drift'); // fixed
    expect((await patch('cut-drift', { mode: 'shadow' })).status).toBe(200);
    const row = await runOnce('cut-drift');
    expect(row).toMatchObject({ decision_mode: 'shadow', comparison: { equal: true } });
    // The three unequal comparisons from before the rollback no longer count: no second rollback.
    expect((await storedDefinition('cut-drift')).mode).toBe('shadow');
    const status = await call(url('/v1/triggers/cut-drift/status'), { key: writeKey });
    expect(status.body.migration.consistency).toMatchObject({ rate: 1, samples: 1 });
    // …and the old record cannot be used to raise the weight either.
    expect((await patch('cut-drift', { migration_weight: 0.5 })).status).toBe(409);
  });

  it('should count agent failures for the red line from re-entering shadow', async () => {
    await register('cut-failing', { migration_weight: 0 });
    agentOutput.set('cut-failing', () => Promise.reject(new Error('hallucinated a column')));
    for (let i = 0; i < 2; i++) await runOnce('cut-failing');
    expect((await storedDefinition('cut-failing')).mode).toBe('live');

    expect((await patch('cut-failing', { mode: 'shadow' })).status).toBe(200);
    await runOnce('cut-failing'); // one failure since re-entering: below the red line of 2
    expect((await storedDefinition('cut-failing')).mode).toBe('shadow');
    await runOnce('cut-failing');
    expect((await storedDefinition('cut-failing')).mode).toBe('live');
    const rollbacks = (await triggerAudits(api.db, TENANT, 'cut-failing')).filter(
      (a) => a.event_type === 'MIGRATION_ROLLED_BACK',
    );
    expect(rollbacks).toHaveLength(2);
  });
});
