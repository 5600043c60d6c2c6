import { describe, expect, it } from 'vitest';
import {
  BUILT_IN_TRIGGERS,
  TriggerDefinitionSchema,
  describeTarget,
  handlerCallDeadline,
} from '../src/index.js';

describe('a lead_scan handler target', () => {
  it('should take a window kind, normalized, and describe the call as a lead scan', () => {
    const definition = TriggerDefinitionSchema.parse({
      event_name: 'nightly-lead',
      expression: '0 4 * * *',
      fallback: { lead_scan: { window: ' 36H ' } },
    });
    expect(definition.fallback).toEqual({ lead_scan: { window: '36h' } });
    expect(definition.migration_weight).toBe(0);
    expect(describeTarget(definition.fallback!)).toEqual({ kind: 'lead_scan', name: '36h' });
    // A scan is bounded by the trigger's max_duration_ms alone (it has no timeoutMs of its own).
    const now = new Date('2026-01-01T00:00:00Z');
    expect(handlerCallDeadline(definition.fallback!, 60_000, now).toISOString()).toBe(
      '2026-01-01T00:01:00.000Z',
    );
  });

  it.each([
    [{ lead_scan: { window: '3w' } }, ['fallback', 'lead_scan', 'window'], /"Nh" or "Nd"/],
    // The tenant is always the trigger's: a handler cannot name another.
    [
      { lead_scan: { window: '24h', tenant_id: 'globex' } },
      ['fallback', 'lead_scan'],
      /Unrecognized key: "tenant_id"/,
    ],
    [{ lead_scan: {} }, ['fallback'], /must be/],
  ])('should refuse %j, naming the field', (fallback, path, message) => {
    const result = TriggerDefinitionSchema.safeParse({ event_name: 'x', expression: '0 4 * * *', fallback });
    expect(result.success).toBe(false);
    const issue = result.error!.issues.find((i) => message.test(i.message));
    expect(issue?.path.slice(0, path.length)).toEqual(path);
  });
});

describe('the built-in triggers', () => {
  it('should be the daily and weekly lead scans, valid trigger definitions', () => {
    const parsed = BUILT_IN_TRIGGERS.map((input) => TriggerDefinitionSchema.parse(input));
    expect(parsed.map((d) => [d.event_name, d.expression, d.timezone, d.fallback, d.agent])).toEqual([
      ['lead-scan-24h', '0 2 * * *', 'UTC', { lead_scan: { window: '24h' } }, null],
      ['lead-scan-7d', '0 3 * * 1', 'UTC', { lead_scan: { window: '7d' } }, null],
    ]);
    expect(parsed.every((d) => d.tags.includes('builtin') && d.enabled)).toBe(true);
  });
});
