// Lead scan windows (docs/lead-miner.md): `24h`, `7d`, any `Nh`/`Nd` from 1h to 90d; anything else is a clear error.
import { describe, expect, it } from 'vitest';
import {
  LeadWindowKindSchema,
  ValidationError,
  leadScanWindow,
  parseLeadWindow,
  sliceWindow,
} from '../src/index.js';

describe('parseLeadWindow', () => {
  it.each([
    ['1h', '1h', 1],
    ['24h', '24h', 24],
    ['7d', '7d', 168],
    ['90d', '90d', 2160],
    ['2160h', '2160h', 2160],
    ['  7D ', '7d', 168],
  ])('should accept %j as %s (%i hours)', (input, kind, hours) => {
    expect(parseLeadWindow(input)).toEqual({ kind, hours, ms: hours * 3_600_000 });
  });

  it.each([
    ['0h'],
    ['0d'],
    ['91d'],
    ['2161h'],
    ['3w'],
    ['24'],
    ['h'],
    ['1.5h'],
    ['-1d'],
    ['01h'],
    [''],
    [24],
    [null],
  ])('should refuse %j naming the path', (input) => {
    try {
      parseLeadWindow(input, '--window');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).message).toBe(
        `invalid --window: must be "Nh" or "Nd" between 1h and 90d, e.g. 24h or 7d; got ${JSON.stringify(input)}`,
      );
      expect((error as ValidationError).details).toEqual([
        { path: '--window', message: expect.stringContaining('between 1h and 90d') },
      ]);
    }
  });

  it('should agree with the schema the API and the job catalog use', () => {
    expect(LeadWindowKindSchema.parse(' 24H')).toBe('24h');
    expect(LeadWindowKindSchema.safeParse('91d').success).toBe(false);
  });
});

describe('leadScanWindow', () => {
  it('should end now and start one window earlier, with the equal window before it', () => {
    const now = new Date('2026-11-22T10:00:00.000Z');
    expect(leadScanWindow(parseLeadWindow('24h'), now)).toEqual({
      kind: '24h',
      start: new Date('2026-11-21T10:00:00.000Z'),
      end: now,
      previous_start: new Date('2026-11-20T10:00:00.000Z'),
    });
  });
});

describe('sliceWindow', () => {
  it('should cover the window with consecutive slices, the last one shorter', () => {
    const start = new Date('2026-11-01T00:00:00Z');
    const slices = sliceWindow(start, new Date('2026-11-03T12:00:00Z'), 24 * 3_600_000);
    expect(slices.map((s) => [s.start.toISOString(), s.end.toISOString()])).toEqual([
      ['2026-11-01T00:00:00.000Z', '2026-11-02T00:00:00.000Z'],
      ['2026-11-02T00:00:00.000Z', '2026-11-03T00:00:00.000Z'],
      ['2026-11-03T00:00:00.000Z', '2026-11-03T12:00:00.000Z'],
    ]);
    expect(sliceWindow(start, start)).toEqual([]);
  });
});
