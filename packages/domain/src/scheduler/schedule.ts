/**
 * Cron expressions and time zones of triggers: strict validation and fire-time previews.
 *
 * Previews use cron-parser, the very module (same version, same install) BullMQ's job schedulers fire with,
 * called the way BullMQ calls it (`CronExpressionParser.parse(pattern, { tz, currentDate }).next()`), so a
 * preview never disagrees with the firing. `@every <n>s|m|h` schedules map to BullMQ's `every`, aligned to
 * multiples of the interval since the epoch (the scheduler sets `startDate` to the next aligned slot).
 */
import { CronExpressionParser } from 'cron-parser';
import { ValidationError } from '../errors.js';

/** How a trigger fires: a 5-field cron pattern in a zone, or a fixed interval. */
export type Schedule =
  { kind: 'cron'; pattern: string; timezone: string } | { kind: 'every'; everyMs: number; timezone: string };

/**
 * An expression or zone that cannot be used; `field` is `expression` or `timezone`. Bad input (a 400 naming
 * the field, never retried): it is thrown while validating what a caller sent, and by {@link scheduleOf} only
 * for a stored trigger that no longer validates (a zone dropped from tzdata), which no retry mends either.
 */
export class ScheduleError extends ValidationError {
  constructor(
    readonly field: 'expression' | 'timezone',
    message: string,
  ) {
    super(message, [{ path: field, message }]);
  }
}

const FIELDS = [
  { name: 'minute', min: 0, max: 59, names: undefined },
  { name: 'hour', min: 0, max: 23, names: undefined },
  { name: 'day-of-month', min: 1, max: 31, names: undefined },
  {
    name: 'month',
    min: 1,
    max: 12,
    names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'],
  },
  // 0 and 7 are both Sunday, as in Vixie cron and cron-parser.
  { name: 'day-of-week', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
] as const;

const MACRO_HINTS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

/**
 * Which checks apply: `input` (a trigger being created or changed, and every setting) takes the strict rules;
 * `stored` (a trigger already in the database) skips the ones added later — steps wider than their range, the
 * IANA spelling of a zone the runtime still understands — so a trigger accepted then keeps firing as it did.
 */
export type ScheduleRules = 'input' | 'stored';

/** The smallest and largest `@every` interval. */
export const MIN_EVERY_MS = 1000;
export const MAX_EVERY_MS = 7 * 24 * 3600 * 1000;

const EVERY = /^@every\s+(\d+)\s*(s|m|h)$/i;
const PART = /^(\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:\/([0-9]+))?$/;

/**
 * Checks an expression and returns it normalized (single spaces). Accepts strictly 5 fields — minute, hour,
 * day of month, month, day of week — with `* , - /` and month/day names, or `@every <n>s|m|h`. A 6-field
 * pattern is refused (never read as seconds), as are cron-parser's extensions (`L`, `W`, `#`, `?`, `H`) and
 * macros such as `@daily`. Throws a {@link ScheduleError} naming the bad field.
 */
export function validateCronExpression(expression: string, rules: ScheduleRules = 'input'): string {
  const trimmed = expression.trim().replace(/\s+/g, ' ');
  if (trimmed === '')
    throw new ScheduleError(
      'expression',
      'expression is empty; give 5 fields: minute hour day-of-month month day-of-week',
    );
  const every = EVERY.exec(trimmed);
  if (every) {
    everyMsOf(trimmed);
    return `@every ${every[1]}${every[2]!.toLowerCase()}`;
  }
  if (trimmed.startsWith('@')) {
    const hint = MACRO_HINTS[trimmed.toLowerCase()];
    throw new ScheduleError(
      'expression',
      hint
        ? `"${trimmed}" is not accepted; write it as 5 fields: "${hint}"`
        : `"${trimmed}" is not a schedule; use 5 cron fields or "@every <n>s|m|h"`,
    );
  }
  const fields = trimmed.split(' ');
  if (fields.length === 6) {
    throw new ScheduleError(
      'expression',
      `"${trimmed}" has 6 fields; Warden cron is strictly 5 fields (minute hour day-of-month month day-of-week) and never reads a seconds field — for sub-minute schedules use "@every <n>s"`,
    );
  }
  if (fields.length !== 5) {
    throw new ScheduleError(
      'expression',
      `"${trimmed}" has ${fields.length} field${fields.length === 1 ? '' : 's'}; expected 5: minute hour day-of-month month day-of-week`,
    );
  }
  fields.forEach((field, index) => validateField(field, FIELDS[index]!, rules));
  try {
    CronExpressionParser.parse(trimmed, { tz: 'UTC', strict: false });
  } catch (error) {
    throw new ScheduleError(
      'expression',
      `"${trimmed}" is not a valid cron expression: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  return trimmed;
}

function validateField(field: string, spec: (typeof FIELDS)[number], rules: ScheduleRules): void {
  for (const part of field.split(',')) {
    const match = PART.exec(part);
    if (!match) {
      throw new ScheduleError(
        'expression',
        `${spec.name} field "${field}": "${part}" is not valid; use numbers, names, "*", ",", "-" and "/" only`,
      );
    }
    const [, range, step] = match;
    if (step !== undefined && Number(step) === 0)
      throw new ScheduleError('expression', `${spec.name} field "${field}": a step of 0 never fires`);
    const bounds =
      range === '*' ? [spec.min, spec.max] : range!.split('-').map((value) => fieldValue(value, spec, field));
    if (bounds.length === 2 && bounds[0]! > bounds[1]!) {
      throw new ScheduleError('expression', `${spec.name} field "${field}": range "${range}" runs backwards`);
    }
    // `*/100` in minutes or `5/90` fires once in its range, which is never what the author meant: a step must
    // fit inside the values it steps over (from the start to the range's end, or to the field's maximum).
    if (step !== undefined && rules === 'input') {
      const start = bounds[0]!;
      const end = bounds.length === 2 ? bounds[1]! : spec.max;
      if (Number(step) > end - start) {
        throw new ScheduleError(
          'expression',
          `${spec.name} field "${field}": a step of ${step} is larger than its range ${start}-${end}, so it would fire only at ${start}; use at most ${Math.max(1, end - start)}`,
        );
      }
    }
  }
}

function fieldValue(value: string, spec: (typeof FIELDS)[number], field: string): number {
  if (/^\d+$/.test(value)) {
    const number = Number(value);
    if (number < spec.min || number > spec.max) {
      throw new ScheduleError(
        'expression',
        `${spec.name} field "${field}": ${number} is out of range ${spec.min}-${spec.max}`,
      );
    }
    return number;
  }
  const index = spec.names?.indexOf(value.toLowerCase() as never) ?? -1;
  if (index < 0) {
    const allowed = spec.names
      ? `numbers ${spec.min}-${spec.max} or names ${spec.names.join(', ')}`
      : `numbers ${spec.min}-${spec.max}`;
    throw new ScheduleError(
      'expression',
      `${spec.name} field "${field}": "${value}" is not valid here; use ${allowed}`,
    );
  }
  return spec.name === 'month' ? index + 1 : index;
}

function everyMsOf(expression: string): number {
  const match = EVERY.exec(expression)!;
  const unit = match[2]!.toLowerCase();
  const ms = Number(match[1]) * (unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000);
  if (ms < MIN_EVERY_MS || ms > MAX_EVERY_MS) {
    throw new ScheduleError('expression', `"${expression}": the interval must be between 1s and 168h`);
  }
  return ms;
}

const zoneCache = new Map<string, boolean>();

/** IANA `Area/Location` spelling, each part starting with a capital (`America/Port-au-Prince`, `Etc/GMT+5`). */
const IANA_NAME = /^[A-Z][A-Za-z0-9_+-]*(\/[A-Z][A-Za-z0-9_+-]*)+$/;

/**
 * Checks an IANA time zone name (`UTC`, `Europe/Rome`, `America/New_York`) and returns it. Only the IANA spelling
 * is taken: `utc`, `europe/rome`, legacy abbreviations (`EST`, `CET`, `GMT`) and offsets such as `+02:00` are
 * refused with a {@link ScheduleError}, because days, daily caps and cron fields all count in this zone — a name
 * that means a fixed offset (EST never observes daylight time) or that only some runtimes accept would shift
 * them without anyone noticing.
 */
export function validateTimeZone(timezone: string, rules: ScheduleRules = 'input'): string {
  const cached = zoneCache.get(timezone);
  if (cached === true) return timezone;
  const known = (() => {
    try {
      return new Intl.DateTimeFormat('en-US', { timeZone: timezone }).resolvedOptions().timeZone;
    } catch {
      return undefined;
    }
  })();
  const spelled =
    timezone === 'UTC' || IANA_NAME.test(timezone) || (rules === 'stored' && /^[\w/+-]+$/.test(timezone));
  const valid =
    spelled &&
    known !== undefined &&
    (() => {
      try {
        CronExpressionParser.parse('0 0 * * *', { tz: timezone }).next();
        return true;
      } catch {
        return false;
      }
    })();
  if (!valid) {
    const hint =
      known !== undefined && known.toLowerCase() === timezone.toLowerCase() && known !== timezone
        ? ` — did you mean "${known}"?`
        : known !== undefined && !spelled
          ? ' — abbreviations and legacy names are not accepted; name the place (e.g. "America/New_York")'
          : '';
    throw new ScheduleError(
      'timezone',
      `"${timezone}" is not an IANA time zone name (e.g. "UTC", "Europe/Rome", "America/New_York")${hint}`,
    );
  }
  if (rules === 'input') zoneCache.set(timezone, true);
  return timezone;
}

/** The schedule of an already validated expression and zone. Throws a {@link ScheduleError} otherwise. */
export function scheduleOf(expression: string, timezone: string): Schedule {
  const normalized = validateCronExpression(expression, 'stored');
  const tz = validateTimeZone(timezone, 'stored');
  if (normalized.startsWith('@every')) return { kind: 'every', everyMs: everyMsOf(normalized), timezone: tz };
  return { kind: 'cron', pattern: normalized, timezone: tz };
}

/** The first fire strictly after `after`, as BullMQ computes it. */
export function nextFireAfter(schedule: Schedule, after: Date): Date {
  if (schedule.kind === 'every')
    return new Date(Math.floor(after.getTime() / schedule.everyMs) * schedule.everyMs + schedule.everyMs);
  return CronExpressionParser.parse(schedule.pattern, { tz: schedule.timezone, currentDate: after })
    .next()
    .toDate();
}

/** The next `count` fire times after `from` (the `next N fires` of a trigger's status). */
export function nextFireTimes(schedule: Schedule, from: Date, count: number): Date[] {
  const times: Date[] = [];
  if (schedule.kind === 'cron') {
    const iterator = CronExpressionParser.parse(schedule.pattern, {
      tz: schedule.timezone,
      currentDate: from,
    });
    for (let i = 0; i < count; i++) times.push(iterator.next().toDate());
    return times;
  }
  let next = nextFireAfter(schedule, from);
  for (let i = 0; i < count; i++) {
    times.push(next);
    next = new Date(next.getTime() + schedule.everyMs);
  }
  return times;
}

/**
 * Fire times strictly between `after` and `before`, oldest first, at most `limit` of them — the fires a
 * stopped scheduler never produced (BullMQ collapses them into one late run) or a paused trigger skipped.
 */
export function fireTimesBetween(schedule: Schedule, after: Date, before: Date, limit: number): Date[] {
  const times: Date[] = [];
  if (before.getTime() <= after.getTime() || limit <= 0) return times;
  if (schedule.kind === 'cron') {
    const iterator = CronExpressionParser.parse(schedule.pattern, {
      tz: schedule.timezone,
      currentDate: after,
      endDate: before,
    });
    while (times.length < limit && iterator.hasNext()) {
      const next = iterator.next().toDate();
      if (next.getTime() >= before.getTime()) break;
      times.push(next);
    }
    return times;
  }
  for (
    let t = nextFireAfter(schedule, after).getTime();
    t < before.getTime() && times.length < limit;
    t += schedule.everyMs
  )
    times.push(new Date(t));
  return times;
}
