import { describe, expect, it } from 'vitest';
import {
  TriggerDefinitionSchema,
  TriggersFileSchema,
  formatTriggerPlan,
  planTriggerApply,
} from '../src/scheduler/index.js';

const def = (event_name: string, expression = '0 2 * * *') =>
  TriggerDefinitionSchema.parse({ event_name, expression, agent: { queue: 'q' } });

describe('planTriggerApply', () => {
  const stored = [def('a'), def('b'), def('c', '0 3 * * *')];

  it('should create what is new, update what differs (naming the fields) and leave the rest alone', () => {
    const plan = planTriggerApply(stored, [def('a'), def('c', '0 4 * * *'), def('d')], { prune: false });
    expect(plan.steps).toEqual([
      { action: 'unchanged', event_name: 'a' },
      { action: 'keep', event_name: 'b' },
      {
        action: 'update',
        event_name: 'c',
        definition: def('c', '0 4 * * *'),
        changed_fields: ['expression'],
      },
      { action: 'create', event_name: 'd', definition: def('d') },
    ]);
    expect(plan.changes).toBe(true);
  });

  it('should delete what the file leaves out only with prune', () => {
    expect(planTriggerApply(stored, [], { prune: false }).changes).toBe(false);
    const pruned = planTriggerApply(stored, [def('a')], { prune: true });
    expect(pruned.steps.filter((s) => s.action === 'delete').map((s) => s.event_name)).toEqual(['b', 'c']);
  });

  it('should keep a built-in trigger the file leaves out, even with prune, and update one it lists', () => {
    const builtIn = TriggerDefinitionSchema.parse({
      event_name: 'lead-scan-24h',
      expression: '0 2 * * *',
      fallback: { lead_scan: { window: '24h' } },
      tags: ['builtin', 'lead-scan'],
    });
    const pruned = planTriggerApply([...stored, builtIn], [def('a')], { prune: true });
    expect(pruned.steps.find((s) => s.event_name === 'lead-scan-24h')).toEqual({
      action: 'keep',
      event_name: 'lead-scan-24h',
      built_in: true,
    });
    expect(formatTriggerPlan(pruned)).toContain('lead-scan-24h (built-in, not in the file; kept');
    const retimed = { ...builtIn, expression: '0 6 * * *' };
    expect(planTriggerApply([builtIn], [retimed], { prune: true }).steps).toEqual([
      { action: 'update', event_name: 'lead-scan-24h', definition: retimed, changed_fields: ['expression'] },
    ]);
  });

  it('should see no change when the file spells out the defaults the stored trigger has', () => {
    const explicit = TriggerDefinitionSchema.parse({
      event_name: 'a',
      expression: '0 2 * * *',
      agent: { queue: 'q' },
      timezone: 'UTC',
      catchup_window_seconds: 60,
    });
    expect(planTriggerApply(stored, [explicit], { prune: false }).steps[0]).toEqual({
      action: 'unchanged',
      event_name: 'a',
    });
  });

  it('should print one line per trigger and a summary', () => {
    const text = formatTriggerPlan(
      planTriggerApply(stored, [def('c', '0 5 * * *'), def('e')], { prune: true }),
    );
    expect(text).toContain('- delete    a');
    expect(text).toContain('~ update    c (expression)');
    expect(text).toContain('+ create    e');
    expect(text).toContain('plan: 1 to create, 1 to update, 2 to delete, 0 unchanged');
  });
});

describe('TriggersFileSchema', () => {
  it('should refuse a name defined twice, unknown top-level keys and invalid definitions, with paths', () => {
    const result = TriggersFileSchema.safeParse({
      tenant: 'acme',
      extra: true,
      triggers: [
        { event_name: 'x', expression: '0 1 * * *', agent: { queue: 'q' } },
        { event_name: 'x', expression: '0 2 * * *', agent: { queue: 'q' } },
        { event_name: 'y', expression: '0 2 * * *', timezone: 'EST', agent: { queue: 'q' } },
      ],
    });
    expect(result.success).toBe(false);
    const issues = result.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues.join('\n')).toMatch(/^: Unrecognized key: "extra"|Unrecognized key/m);
    expect(issues.join('\n')).toMatch(/triggers\.2\.timezone: .*not an IANA time zone/);
  });

  it('should report a duplicate name at the second entry', () => {
    const result = TriggersFileSchema.safeParse({
      triggers: [
        { event_name: 'x', expression: '0 1 * * *', agent: { queue: 'q' } },
        { event_name: 'x', expression: '0 2 * * *', agent: { queue: 'q' } },
      ],
    });
    expect(result.error!.issues).toEqual([
      expect.objectContaining({
        path: ['triggers', 1, 'event_name'],
        message: expect.stringMatching(/defined twice/),
      }),
    ]);
  });
});
