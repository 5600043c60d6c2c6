import { describe, expect, it } from 'vitest';
import {
  IncomingEventSchema,
  MAX_JSON_DEPTH,
  TaskEventSchema,
  inspectJson,
  reservedTaskIdPrefix,
} from '../src/index.js';

/** A value nested `levels` deep, built without recursion. */
function deep(levels: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < levels; i++) value = { a: value };
  return value;
}

describe('inspectJson', () => {
  it('should walk 200,000 levels without overflowing the stack', () => {
    expect(inspectJson(deep(200_000), { maxDepth: Number.POSITIVE_INFINITY })).toEqual([]);
    const [problem] = inspectJson(deep(200_000));
    expect(problem?.message).toBe(`is nested deeper than ${MAX_JSON_DEPTH} levels`);
    expect(problem?.path).toHaveLength(MAX_JSON_DEPTH);
  });

  it('should take 64 levels and refuse 65', () => {
    expect(inspectJson(deep(MAX_JSON_DEPTH))).toEqual([]);
    expect(inspectJson(deep(MAX_JSON_DEPTH + 1))).toHaveLength(1);
  });

  it('should name NUL and lone surrogates in values and keys by their path', () => {
    const problems = inspectJson({
      a: ['ok', 'x\u0000'],
      b: { 'k\ud800': 1 },
      c: '\udc00',
      d: '\ud83d\ude00',
    });
    expect(problems.map((p) => p.path)).toEqual([['a', 1], ['b', 'k\ud800'], ['c']]);
  });

  it('should leave NUL alone when asked to, and never a lone surrogate', () => {
    expect(inspectJson({ a: 'x\u0000', b: '\ud800' }, { nul: false }).map((p) => p.path)).toEqual([['b']]);
  });

  it('should report at most 20 problems', () => {
    expect(inspectJson(Array.from({ length: 1000 }, () => '\u0000'))).toHaveLength(20);
  });
});

describe('event schemas', () => {
  const event = { event_id: 'e', task_id: 't', event_type: 'TASK_CREATED' };

  it('should bound the depth of incoming events but not of stored ones', () => {
    expect(IncomingEventSchema.safeParse({ ...event, payload: { p: deep(100) } }).success).toBe(false);
    const stored = {
      ...event,
      tenant_id: 'acme',
      ts: '2024-01-01T00:00:00Z',
      source: 'http',
      payload: { p: deep(100) },
    };
    expect(TaskEventSchema.safeParse(stored).success).toBe(true);
  });

  it('should refuse reserved task ids in any letter case and only those', () => {
    expect(reservedTaskIdPrefix('changeset:x')).toBe('changeset:');
    expect(reservedTaskIdPrefix('TRIGGER:x')).toBe('trigger:');
    expect(reservedTaskIdPrefix('changesets-report')).toBeUndefined();
    expect(reservedTaskIdPrefix('x:changeset:')).toBeUndefined();
  });
});
