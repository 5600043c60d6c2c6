import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupMemberLinks, startTracing, withSpan, type Tracing } from '@warden/observability';
import { GroupCommitter } from '../src/index.js';

type Exporter = NonNullable<Parameters<typeof startTracing>[0]['exporter']>;
type Exported = Parameters<Exporter['export']>[0][number];

describe('GroupCommitter with tracing on', () => {
  const exported: Exported[] = [];
  let tracing: Tracing;

  beforeAll(async () => {
    const exporter: Exporter = {
      export: (spans, done) => {
        exported.push(...spans);
        done({ code: 0 });
      },
      shutdown: async () => {},
    };
    tracing = (await startTracing({ service: 'test', env: { OTEL_TRACES_EXPORTER: 'otlp' }, exporter }))!;
  });
  afterAll(() => tracing?.shutdown());

  it("should run a group under its first item's span and link the others, whichever call started it", async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const committer = new GroupCommitter<string, string>({
      maxGroupSize: 10,
      maxInFlight: 1,
      run: (items) =>
        withSpan('group', { links: groupMemberLinks() }, async () => {
          if (items.includes('first')) await blocked;
          return items;
        }),
    });
    // `first` holds the only slot; `a` and `b` wait, and their group is started by `first`'s completion.
    const first = withSpan('submit first', {}, () => committer.submit('first'));
    const a = withSpan('submit a', {}, () => committer.submit('a'));
    const b = withSpan('submit b', {}, () => committer.submit('b'));
    release();
    await Promise.all([first, a, b]);
    await tracing.flush();

    const byName = (name: string) => exported.find((span) => span.name === name)!;
    const groups = exported.filter((span) => span.name === 'group');
    const second = groups.find((span) => span.links.length > 0)!;
    expect(groups).toHaveLength(2);
    expect(second.parentSpanContext?.spanId).toBe(byName('submit a').spanContext().spanId);
    expect(second.spanContext().traceId).toBe(byName('submit a').spanContext().traceId);
    expect(second.links.map((link) => link.context.spanId)).toEqual([
      byName('submit b').spanContext().spanId,
    ]);
    const firstGroup = groups.find((span) => span !== second)!;
    expect(firstGroup.parentSpanContext?.spanId).toBe(byName('submit first').spanContext().spanId);
  });
});
