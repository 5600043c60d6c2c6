import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  IncomingEventSchema,
  MAX_JSON_DEPTH,
  TaskEventSchema,
  inspectJson,
  reservedTaskIdPrefix,
  toStorableJson,
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

describe('toStorableJson', () => {
  // The plain definition: every string and key through storableText, every container copied.
  const reference = (value: unknown, depth = 0): unknown => {
    if (typeof value === 'string') return value.replace(UNSTORABLE_REFERENCE, '\uFFFD');
    if (value === null || typeof value !== 'object') return value;
    if (depth >= 100) return '(nested too deep to store)';
    if (Array.isArray(value)) return value.map((item) => reference(item, depth + 1));
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k.replace(UNSTORABLE_REFERENCE, '\uFFFD'),
        reference(v, depth + 1),
      ]),
    );
  };
  const UNSTORABLE_REFERENCE =
    // eslint-disable-next-line no-control-regex
    /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]|\u0000/g;

  it('should hand back a value that is storable already as it is, without copying it', () => {
    const value = {
      reason: 'ok 👍',
      findings: [{ code: 'X', evidence: { argv: ['a', 'b'] } }],
      n: 1,
      at: null,
    };
    expect(toStorableJson(value)).toBe(value);
  });

  it('should replace NUL and lone surrogates in values and keys, leaving the input untouched', () => {
    const value = { ok: 'fine', deep: [{ ['k\u0000']: 'a\uD800b' }], cut: '👍'.slice(0, 1) };
    const copy = structuredClone(value);
    expect(toStorableJson(value)).toEqual({ ok: 'fine', deep: [{ 'k\uFFFD': 'a\uFFFDb' }], cut: '\uFFFD' });
    expect(value).toEqual(copy);
  });

  it('should agree with the plain definition on any JSON, whatever its strings hold', () => {
    const text = fc.string({
      unit: fc.oneof(
        fc.constantFrom('\u0000', '\uD800', '\uDC00', 'a', '👍'),
        fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)),
      ),
    });
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        text,
        fc.integer(),
        fc.constant(null),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(text, tie('value'), { maxKeys: 4 }),
      ),
    })).value;
    fc.assert(
      fc.property(json, (value) => {
        expect(toStorableJson(value)).toEqual(reference(value));
      }),
      { numRuns: 500 },
    );
  });
});
