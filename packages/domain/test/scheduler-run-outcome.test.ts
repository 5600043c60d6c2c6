import { describe, expect, it } from 'vitest';
import {
  TriggerDefinitionSchema,
  fallbackNote,
  handlerCallDeadline,
  handlerCallEnd,
  handlerContext,
  shadowComparison,
  MAX_HANDLER_ERROR_CHARS,
} from '../src/index.js';

const STARTED = new Date('2025-06-01T12:00:00Z');
const DEADLINE = new Date('2025-06-01T12:00:30Z');
const call = { started_at: STARTED, deadline_at: DEADLINE };

describe("a handler call's end", () => {
  it('should record a valid result as success', () => {
    const end = handlerCallEnd(
      call,
      { ok: true, result: { agent_run_id: 'run-1', cost_usd: 0.01 } },
      STARTED,
    );
    expect(end).toEqual({ status: 'success', result: { agent_run_id: 'run-1', cost_usd: 0.01 } });
  });

  it('should fail a result that breaks the schema as validation, naming the field', () => {
    const end = handlerCallEnd(call, { ok: true, result: { cost_usd: -1 } as never }, STARTED);
    expect(end).toMatchObject({ status: 'failed', error_kind: 'validation' });
    expect(end?.error).toMatch(/^the handler returned an invalid result: cost_usd: /);
  });

  it('should keep a reported failure with its kind, a timeout as timeout, the message cut to size', () => {
    const long = 'x'.repeat(MAX_HANDLER_ERROR_CHARS + 10);
    expect(handlerCallEnd(call, { ok: false, kind: 'handler', message: long }, STARTED)).toEqual({
      status: 'failed',
      error_kind: 'handler',
      error: 'x'.repeat(MAX_HANDLER_ERROR_CHARS),
    });
    expect(handlerCallEnd(call, { ok: false, kind: 'timeout', message: 'slow' }, STARTED)?.status).toBe(
      'timeout',
    );
  });

  it('should time a call out once its deadline passed, saying how long it had', () => {
    expect(handlerCallEnd(call, { deadline: true }, DEADLINE)).toEqual({
      status: 'timeout',
      error_kind: 'timeout',
      error: 'no result within 30000 ms (max_duration_ms)',
    });
  });

  it('should leave a call whose deadline has not passed yet (a sweeper clock running ahead)', () => {
    expect(handlerCallEnd(call, { deadline: true }, new Date(DEADLINE.getTime() - 1000))).toBeUndefined();
  });
});

describe('the shadow comparison', () => {
  const success = (output: unknown) => ({ status: 'success' as const, result: { output }, error: null });

  it('should compare the outputs once the fallback served a shadow run', () => {
    const comparison = shadowComparison({
      decision_mode: 'shadow',
      agent: success({ total: 2 }),
      fallback: success({ total: 3 }),
      compare_keys: ['total'],
    });
    expect(comparison).toMatchObject({ equal: false, compared_keys: ['total'] });
  });

  it('should count an agent failure as not consistent', () => {
    const comparison = shadowComparison({
      decision_mode: 'shadow',
      agent: { status: 'timeout', result: null, error: null },
      fallback: success({}),
      compare_keys: [],
    });
    expect(comparison).toEqual({
      equal: false,
      compared_keys: ['(whole output)'],
      differences: [],
      agent_error: 'timeout',
    });
  });

  it('should compare nothing outside shadow mode or when the fallback did not succeed', () => {
    expect(
      shadowComparison({ decision_mode: 'agent', agent: success(1), fallback: success(1), compare_keys: [] }),
    ).toBeNull();
    expect(
      shadowComparison({
        decision_mode: 'shadow',
        agent: success(1),
        fallback: { status: 'failed', result: null },
        compare_keys: [],
      }),
    ).toBeNull();
  });
});

describe('the note of a run the fallback rescued', () => {
  it('should say why the agent did not serve it', () => {
    expect(fallbackNote({ status: 'timeout', error: null })).toBe('agent timed out');
    expect(fallbackNote({ status: 'failed', error: 'boom' })).toBe('agent failed: boom');
  });
  it('should have none when the agent served or never ran', () => {
    expect(fallbackNote({ status: 'success', error: null })).toBeNull();
    expect(fallbackNote(undefined)).toBeNull();
  });
});

describe('handler calls', () => {
  it("should give a call the trigger's limit, or an HTTP target's timeoutMs when tighter", () => {
    expect(handlerCallDeadline({ queue: 'q' }, 60_000, STARTED).getTime()).toBe(STARTED.getTime() + 60_000);
    expect(
      handlerCallDeadline({ url: 'https://x.test/run', timeoutMs: 5000 }, 60_000, STARTED).getTime(),
    ).toBe(STARTED.getTime() + 5000);
    expect(
      handlerCallDeadline({ url: 'https://x.test/run', timeoutMs: 90_000 }, 60_000, STARTED).getTime(),
    ).toBe(STARTED.getTime() + 60_000);
  });

  it('should hand the handler the trigger, the fire, the previous run and its place in the run', () => {
    const definition = TriggerDefinitionSchema.parse({
      event_name: 'nightly-report',
      expression: '0 2 * * *',
      timezone: 'Europe/Rome',
      focus: ['reports'],
      payload: { region: 'eu' },
      agent: { queue: 'agent' },
    });
    const context = handlerContext({
      definition,
      run: {
        execution_id: 'e-2',
        scheduled_for: STARTED,
        triggered_at: STARTED,
        manual: true,
        params: { force: true },
        retry_count: 1,
      },
      role: 'agent',
      deadline: DEADLINE,
      previous: { execution_id: 'e-1', scheduled_for: STARTED, status: 'success', completed_at: null },
    });
    expect(context).toEqual({
      trigger_type: 'cron',
      event_name: 'nightly-report',
      focus: ['reports'],
      expression: '0 2 * * *',
      timezone: 'Europe/Rome',
      scheduled_for: STARTED.toISOString(),
      triggered_at: STARTED.toISOString(),
      previous_run: {
        execution_id: 'e-1',
        scheduled_for: STARTED.toISOString(),
        status: 'success',
        completed_at: null,
      },
      payload: { region: 'eu' },
      manual: true,
      params: { force: true },
      execution_id: 'e-2',
      retry_count: 1,
      role: 'agent',
      deadline_at: DEADLINE.toISOString(),
    });
  });
});
