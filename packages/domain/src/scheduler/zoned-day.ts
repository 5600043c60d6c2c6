/**
 * Calendar days in a time zone, as UTC instants: daily run and cost caps count from local midnight to local
 * midnight, which is 23 or 25 hours long on DST days.
 */

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timezone: string): Intl.DateTimeFormat {
  let format = formatters.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timezone, format);
  }
  return format;
}

/** The wall-clock fields of `instant` in `timezone`. */
function wallClock(
  instant: number,
  timezone: string,
): { year: number; month: number; day: number; hour: number; minute: number; second: number } {
  const parts: Record<string, number> = {};
  for (const part of formatter(timezone).formatToParts(new Date(instant))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  return {
    year: parts.year!,
    month: parts.month!,
    day: parts.day!,
    hour: parts.hour!,
    minute: parts.minute!,
    second: parts.second!,
  };
}

/** The zone's offset from UTC at `instant`, in ms (Rome in summer: +7 200 000). */
function offsetAt(instant: number, timezone: string): number {
  const wall = wallClock(instant, timezone);
  const asUtc = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second);
  return asUtc - Math.floor(instant / 1000) * 1000;
}

/** The first instant of the local date `year-month-day` (month 1–12) in `timezone`. */
function startOfLocalDate(year: number, month: number, day: number, timezone: string): number {
  const wall = Date.UTC(year, month - 1, day);
  // Two rounds settle the offset even when midnight sits next to a DST change.
  let instant = wall - offsetAt(wall, timezone);
  instant = wall - offsetAt(instant, timezone);
  // Where midnight does not exist (DST at 00:00), the day starts at the first instant that has the date.
  const local = wallClock(instant, timezone);
  if (Date.UTC(local.year, local.month - 1, local.day) < wall) instant += 3_600_000;
  return instant;
}

const days = new Map<string, { start: Date; end: Date }>();
/** Every zone's offset is a multiple of 15 minutes, so a local day never starts inside a quarter hour. */
const QUARTER_HOUR_MS = 15 * 60_000;

/** The local day containing `instant` in `timezone`: `[start, end)` as Dates. */
export function zonedDayOf(instant: Date, timezone: string): { start: Date; end: Date } {
  // Bursts ask for the same day thousands of times; Intl formatting is the expensive part.
  const key = `${timezone}|${Math.floor(instant.getTime() / QUARTER_HOUR_MS)}`;
  const cached = days.get(key);
  if (cached) return { start: new Date(cached.start), end: new Date(cached.end) };
  const day = computeZonedDay(instant, timezone);
  if (days.size >= 10_000) days.clear();
  days.set(key, day);
  return { start: new Date(day.start), end: new Date(day.end) };
}

function computeZonedDay(instant: Date, timezone: string): { start: Date; end: Date } {
  const wall = wallClock(instant.getTime(), timezone);
  const start = startOfLocalDate(wall.year, wall.month, wall.day, timezone);
  const next = new Date(Date.UTC(wall.year, wall.month - 1, wall.day + 1));
  const end = startOfLocalDate(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate(), timezone);
  return { start: new Date(start), end: new Date(end) };
}
