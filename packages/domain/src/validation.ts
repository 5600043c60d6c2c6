import type { z } from 'zod';
import { ConfigError, ValidationError, type ErrorDetail } from './errors.js';

/** Turns zod issues into `{ path, message }` pairs with dotted paths; the root is `(root)`. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], pathPrefix = ''): ErrorDetail[] {
  return issues.map((issue) => {
    const path = [pathPrefix, ...issue.path.map(String)].filter((part) => part !== '').join('.');
    return { path: path === '' ? '(root)' : path, message: issue.message };
  });
}

function summarize(details: ErrorDetail[]): string {
  const shown = details.slice(0, 5).map((d) => `${d.path}: ${d.message}`);
  const more = details.length > shown.length ? ` (and ${details.length - shown.length} more)` : '';
  return shown.join('; ') + more;
}

/**
 * Parses `input` with `schema` or throws a {@link ValidationError} whose message names every failing path.
 * `what` says what was being read ("request body", "job supervisor-events/event").
 */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const details = describeIssues(result.error.issues);
  throw new ValidationError(`invalid ${what}: ${summarize(details)}`, details);
}

/**
 * Parses a configuration source (usually `process.env`) once at start-up. Throws a {@link ConfigError}
 * whose message lists every bad or missing variable, so a service fails fast with a readable line.
 */
export function parseConfig<S extends z.ZodType>(schema: S, source: unknown, what = 'configuration'): z.output<S> {
  const result = schema.safeParse(source);
  if (result.success) return result.data;
  const details = describeIssues(result.error.issues);
  throw new ConfigError(`invalid ${what}: ${summarize(details)}`, details);
}
