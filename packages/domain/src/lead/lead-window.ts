import { z } from 'zod';
import { ValidationError } from '../errors.js';

/** The shortest and longest windows a lead scan accepts (docs/lead-miner.md: 1h…90d). */
export const MIN_LEAD_WINDOW_HOURS = 1;
export const MAX_LEAD_WINDOW_HOURS = 90 * 24;

const HOUR_MS = 3_600_000;
const PATTERN = /^([1-9][0-9]{0,4})([hd])$/;
const RULE = `"Nh" or "Nd" between ${MIN_LEAD_WINDOW_HOURS}h and ${MAX_LEAD_WINDOW_HOURS / 24}d, e.g. 24h or 7d`;

function hoursOf(kind: string): number | undefined {
  const match = PATTERN.exec(kind);
  if (!match) return undefined;
  const hours = Number(match[1]) * (match[2] === 'd' ? 24 : 1);
  return hours >= MIN_LEAD_WINDOW_HOURS && hours <= MAX_LEAD_WINDOW_HOURS ? hours : undefined;
}

/**
 * A window kind as typed (`24h`, `7d`, `36h`…), trimmed and lower-cased. The kind is what fingerprints and
 * locks are keyed by, so `24h` and `1d` are different kinds even though they span the same time.
 */
export const LeadWindowKindSchema = z
  .string()
  .trim()
  .toLowerCase()
  .refine((kind) => hoursOf(kind) !== undefined, { message: `must be ${RULE}` });

/** A parsed window kind: the canonical text and its length. */
export interface LeadWindowKind {
  kind: string;
  hours: number;
  ms: number;
}

/**
 * Parses a window kind or throws a {@link ValidationError} naming `path` (`--window`, `window`), so the CLI can
 * exit 2 and the API answer 400 with the same message.
 */
export function parseLeadWindow(input: unknown, path = 'window'): LeadWindowKind {
  const kind = typeof input === 'string' ? input.trim().toLowerCase() : undefined;
  const hours = kind === undefined ? undefined : hoursOf(kind);
  if (kind === undefined || hours === undefined) {
    const message = `must be ${RULE}; got ${JSON.stringify(input)}`;
    throw new ValidationError(`invalid ${path}: ${message}`, [{ path, message }]);
  }
  return { kind, hours, ms: hours * HOUR_MS };
}

/**
 * The time a scan looks at: `[start, end)` ending now, and the equal window before it
 * (`[previous_start, start)`) that the ratio rule compares against.
 */
export interface LeadScanWindow {
  kind: string;
  start: Date;
  end: Date;
  previous_start: Date;
}

/** The window of kind `kind` that ends at `now` (UTC instants; a window has no time zone). */
export function leadScanWindow(kind: LeadWindowKind, now: Date): LeadScanWindow {
  const end = new Date(now.getTime());
  const start = new Date(end.getTime() - kind.ms);
  return { kind: kind.kind, start, end, previous_start: new Date(start.getTime() - kind.ms) };
}

/**
 * Splits `[start, end)` into consecutive slices of at most `sliceMs` (the last may be shorter), so a long
 * window is read a slice at a time and the reader can report progress between slices.
 */
export function sliceWindow(
  start: Date,
  end: Date,
  sliceMs = 24 * HOUR_MS,
): Array<{ start: Date; end: Date }> {
  if (!(sliceMs > 0)) throw new RangeError('sliceMs must be positive');
  const slices: Array<{ start: Date; end: Date }> = [];
  for (let from = start.getTime(); from < end.getTime(); from += sliceMs) {
    slices.push({ start: new Date(from), end: new Date(Math.min(from + sliceMs, end.getTime())) });
  }
  return slices;
}
