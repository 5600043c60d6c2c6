import { describe, expect, it } from 'vitest';
import {
  ScheduleError,
  fireTimesBetween,
  nextFireTimes,
  scheduleOf,
  validateCronExpression,
  validateTimeZone,
  zonedDayOf,
} from '../src/index.js';

const iso = (dates: Date[]) => dates.map((d) => d.toISOString());

function scheduleErrorOf(run: () => unknown): ScheduleError {
  try {
    run();
  } catch (error) {
    if (error instanceof ScheduleError) return error;
    throw error;
  }
  throw new Error('expected a ScheduleError');
}

describe('cron expressions', () => {
  describe('when the expression is a valid 5-field pattern', () => {
    it.each([
      '* * * * *',
      '0 * * * *',
      '*/15 9-17 * * 1-5',
      '0,30 8 1,15 * *',
      '5 4 * jan-mar mon',
      '0 0 * * 7',
      '0 12 1-31/2 */3 SUN',
      '  0   2 * * *  ',
    ])('should accept "%s"', (expression) => {
      expect(() => validateCronExpression(expression)).not.toThrow();
    });

    it('should normalize whitespace', () => {
      expect(validateCronExpression('  0   2 * * *  ')).toBe('0 2 * * *');
    });
  });

  describe('when the expression has 6 fields', () => {
    it('should refuse it and say seconds are never read', () => {
      const error = scheduleErrorOf(() => validateCronExpression('*/5 * * * * *'));
      expect(error.field).toBe('expression');
      expect(error.message).toMatch(/6 fields/);
      expect(error.message).toMatch(/strictly 5 fields/);
      expect(error.message).toMatch(/@every/);
    });
  });

  describe('when the expression is not valid', () => {
    it.each([
      ['', /empty/],
      ['* * * *', /4 fields; expected 5/],
      ['* * * * * * *', /7 fields/],
      ['60 * * * *', /minute field "60": 60 is out of range 0-59/],
      ['* 24 * * *', /hour field "24": 24 is out of range 0-23/],
      ['* * 0 * *', /day-of-month field "0": 0 is out of range 1-31/],
      ['* * * 13 *', /month field "13": 13 is out of range 1-12/],
      ['* * * * 8', /day-of-week field "8": 8 is out of range 0-7/],
      ['0 0 L * *', /day-of-month field "L"/],
      ['0 0 1W * *', /day-of-month field "1W"/],
      ['0 0 * * 1#2', /day-of-week field "1#2"/],
      ['? * * * *', /minute field "\?"/],
      ['H * * * *', /minute field "H"/],
      ['* * * * mon-sun-tue', /day-of-week field/],
      ['30-10 * * * *', /runs backwards/],
      ['*/0 * * * *', /step of 0/],
      ['*/100 * * * *', /minute field "\*\/100": a step of 100 is larger than its range 0-59/],
      ['*/60 * * * *', /step of 60 is larger than its range 0-59/],
      ['0 */24 * * *', /hour field .* larger than its range 0-23/],
      ['0 0 1-10/10 * *', /day-of-month field .* larger than its range 1-10/],
      ['50/20 * * * *', /larger than its range 50-59/],
      ['0 0 * */12 *', /month field .* larger than its range 1-12/],
      ['* * * foo *', /month field "foo": "foo" is not valid here/],
      ['* * * * jan', /day-of-week field "jan"/],
      ['@daily', /write it as 5 fields: "0 0 \* \* \*"/],
      ['@reboot', /not a schedule/],
      ['@every 0s', /between 1s and 168h/],
      ['@every 500ms', /not a schedule/],
    ])('should refuse "%s" with a message naming the problem', (expression, message) => {
      const error = scheduleErrorOf(() => validateCronExpression(expression));
      expect(error.field).toBe('expression');
      expect(error.message).toMatch(message);
    });
  });

  describe('when the expression is an interval', () => {
    it('should accept @every with s, m and h', () => {
      expect(validateCronExpression('@every 1s')).toBe('@every 1s');
      expect(validateCronExpression('@EVERY 5M')).toBe('@every 5m');
      expect(scheduleOf('@every 2h', 'UTC')).toEqual({ kind: 'every', everyMs: 7_200_000, timezone: 'UTC' });
    });

    it('should fire on multiples of the interval, as the scheduler aligns it', () => {
      const times = nextFireTimes(scheduleOf('@every 15s', 'UTC'), new Date('2025-01-01T00:00:07.500Z'), 3);
      expect(iso(times)).toEqual([
        '2025-01-01T00:00:15.000Z',
        '2025-01-01T00:00:30.000Z',
        '2025-01-01T00:00:45.000Z',
      ]);
    });
  });
});

describe('time zones', () => {
  it.each(['UTC', 'Europe/Rome', 'America/New_York', 'Asia/Kolkata', 'America/Argentina/Buenos_Aires'])(
    'should accept %s',
    (zone) => {
      expect(validateTimeZone(zone)).toBe(zone);
    },
  );

  it.each(['Etc/GMT+5', 'America/North_Dakota/New_Salem', 'America/Port-au-Prince', 'Europe/Kyiv'])(
    'should accept the IANA name %s',
    (zone) => {
      expect(validateTimeZone(zone)).toBe(zone);
    },
  );

  it.each([
    ['utc', /did you mean "UTC"/],
    ['europe/rome', /did you mean "Europe\/Rome"/],
    ['EST', /abbreviations and legacy names are not accepted/],
    ['CET', /abbreviations and legacy names are not accepted/],
    ['GMT', /abbreviations and legacy names are not accepted/],
    ['Etc/UTC ', /is not an IANA time zone name/],
  ])('should refuse "%s", which a runtime may accept but is not the IANA spelling', (zone, hint) => {
    const error = scheduleErrorOf(() => validateTimeZone(zone));
    expect(error.field).toBe('timezone');
    expect(error.message).toMatch(hint);
  });

  it.each(['Mars/Olympus', 'Europe/Rom', '+02:00', 'UTC+2', '', 'Europe/../Rome'])(
    'should refuse "%s" as not an IANA zone',
    (zone) => {
      const error = scheduleErrorOf(() => validateTimeZone(zone));
      expect(error.field).toBe('timezone');
      expect(error.message).toMatch(/is not an IANA time zone/);
    },
  );
});

describe('stored triggers', () => {
  it('should keep firing a trigger stored before the stricter rules (wide step, lower-case zone)', () => {
    expect(scheduleOf('*/100 * * * *', 'utc')).toEqual({
      kind: 'cron',
      pattern: '*/100 * * * *',
      timezone: 'utc',
    });
    expect(() => validateCronExpression('*/100 * * * *')).toThrow(/larger than its range/);
    expect(() => validateTimeZone('utc')).toThrow(/did you mean "UTC"/);
  });

  it('should still refuse a stored zone no runtime knows', () => {
    expect(() => scheduleOf('0 0 * * *', 'Mars/Olympus')).toThrow(/not an IANA time zone/);
  });
});

describe('next fires across daylight saving time', () => {
  describe('when Europe/Rome springs forward on 2025-03-30 (02:00 → 03:00)', () => {
    it('should run a daily 02:30 job once that day, at 03:30 local (the time does not exist)', () => {
      const times = nextFireTimes(
        scheduleOf('30 2 * * *', 'Europe/Rome'),
        new Date('2025-03-28T12:00:00Z'),
        4,
      );
      expect(iso(times)).toEqual([
        '2025-03-29T01:30:00.000Z', // 02:30 CET
        '2025-03-30T01:30:00.000Z', // 03:30 CEST: 02:30 was skipped by the clock change
        '2025-03-31T00:30:00.000Z', // 02:30 CEST
        '2025-04-01T00:30:00.000Z',
      ]);
    });

    it('should run an hourly job once per real hour, with no 02:00 local', () => {
      const times = nextFireTimes(
        scheduleOf('0 * * * *', 'Europe/Rome'),
        new Date('2025-03-29T23:30:00Z'),
        4,
      );
      expect(iso(times)).toEqual([
        '2025-03-30T00:00:00.000Z',
        '2025-03-30T01:00:00.000Z',
        '2025-03-30T02:00:00.000Z',
        '2025-03-30T03:00:00.000Z',
      ]);
    });

    it('should count that day as 23 hours for daily caps', () => {
      const day = zonedDayOf(new Date('2025-03-30T10:00:00Z'), 'Europe/Rome');
      expect(day.start.toISOString()).toBe('2025-03-29T23:00:00.000Z');
      expect(day.end.toISOString()).toBe('2025-03-30T22:00:00.000Z');
    });
  });

  describe('when America/New_York falls back on 2025-11-02 (02:00 → 01:00)', () => {
    it('should run a daily 01:30 job once that day, at the first 01:30 (EDT)', () => {
      const times = nextFireTimes(
        scheduleOf('30 1 * * *', 'America/New_York'),
        new Date('2025-10-31T12:00:00Z'),
        3,
      );
      expect(iso(times)).toEqual([
        '2025-11-01T05:30:00.000Z',
        '2025-11-02T05:30:00.000Z',
        '2025-11-03T06:30:00.000Z',
      ]);
    });

    it('should run a half-hourly job in both repeated hours (every 30 real minutes)', () => {
      const times = nextFireTimes(
        scheduleOf('*/30 * * * *', 'America/New_York'),
        new Date('2025-11-02T04:45:00Z'),
        5,
      );
      expect(iso(times)).toEqual([
        '2025-11-02T05:00:00.000Z', // 01:00 EDT
        '2025-11-02T05:30:00.000Z', // 01:30 EDT
        '2025-11-02T06:00:00.000Z', // 01:00 EST
        '2025-11-02T06:30:00.000Z', // 01:30 EST
        '2025-11-02T07:00:00.000Z', // 02:00 EST
      ]);
    });

    it('should count that day as 25 hours for daily caps', () => {
      const day = zonedDayOf(new Date('2025-11-02T12:00:00Z'), 'America/New_York');
      expect(day.start.toISOString()).toBe('2025-11-02T04:00:00.000Z');
      expect(day.end.toISOString()).toBe('2025-11-03T05:00:00.000Z');
    });
  });
});

describe('fire times between two instants', () => {
  it('should list the missed fires, oldest first, excluding both ends', () => {
    const times = fireTimesBetween(
      scheduleOf('*/10 * * * *', 'UTC'),
      new Date('2025-01-01T00:00:00Z'),
      new Date('2025-01-01T00:40:00Z'),
      100,
    );
    expect(iso(times)).toEqual([
      '2025-01-01T00:10:00.000Z',
      '2025-01-01T00:20:00.000Z',
      '2025-01-01T00:30:00.000Z',
    ]);
  });

  it('should stop at the limit', () => {
    expect(
      fireTimesBetween(
        scheduleOf('@every 1s', 'UTC'),
        new Date('2025-01-01T00:00:00Z'),
        new Date('2025-01-01T01:00:00Z'),
        5,
      ),
    ).toHaveLength(5);
  });

  it('should be empty when the interval is empty', () => {
    expect(
      fireTimesBetween(
        scheduleOf('* * * * *', 'UTC'),
        new Date('2025-01-01T00:00:00Z'),
        new Date('2025-01-01T00:00:30Z'),
        10,
      ),
    ).toEqual([]);
  });
});
