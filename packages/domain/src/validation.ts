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
  let result: z.ZodSafeParseResult<z.output<S>>;
  try {
    result = schema.safeParse(input);
  } catch (error) {
    // A refinement or transform that throws on input it did not expect (e.g. `new URL()` of a bad URL) is
    // still bad input, not a server fault: answer it as such rather than letting it become a 500.
    const message = `could not be read: ${error instanceof Error ? error.message : String(error)}`;
    throw new ValidationError(`invalid ${what}: ${message}`, [{ path: '(root)', message }]);
  }
  if (result.success) return result.data;
  const details = describeIssues(result.error.issues);
  throw new ValidationError(`invalid ${what}: ${summarize(details)}`, details);
}

/**
 * Parses a configuration source (usually `process.env`) once at start-up. Throws a {@link ConfigError}
 * whose message lists every bad or missing variable, so a service fails fast with a readable line.
 */
export function parseConfig<S extends z.ZodType>(
  schema: S,
  source: unknown,
  what = 'configuration',
): z.output<S> {
  const result = schema.safeParse(source);
  if (result.success) return result.data;
  const details = describeIssues(result.error.issues);
  throw new ConfigError(`invalid ${what}: ${summarize(details)}`, details);
}

/**
 * Deepest nesting of objects and arrays Warden accepts in any JSON it is sent (a body, a payload, a cursor).
 * Nothing Warden stores needs more; past it, every recursive consumer downstream (Postgres' jsonb parser,
 * canonical JSON, log serialisers) is one deep payload away from a stack overflow.
 */
export const MAX_JSON_DEPTH = 64;

/** Most problems one inspection reports: a 5 MB body of NULs should not become a 5 MB error. */
const MAX_REPORTED_PROBLEMS = 20;

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export const NUL_MESSAGE = 'must not contain the NUL character (\\u0000): Postgres cannot store it';
export const LONE_SURROGATE_MESSAGE =
  'must not contain a lone UTF-16 surrogate (e.g. \\ud800): it is not valid Unicode and Postgres cannot store it';

/**
 * What is wrong with `value` as text Warden stores, or undefined. NUL cannot go into Postgres text or jsonb;
 * a lone surrogate is not Unicode at all (jsonb refuses its escape, text silently turns it into U+FFFD).
 */
export function unstorableTextProblem(value: string, options: { nul?: boolean } = {}): string | undefined {
  if ((options.nul ?? true) && value.includes('\u0000')) return NUL_MESSAGE;
  if (LONE_SURROGATE.test(value)) return LONE_SURROGATE_MESSAGE;
  return undefined;
}

export interface JsonProblem {
  path: Array<string | number>;
  message: string;
}

export interface InspectJsonOptions {
  /** @defaultValue {@link MAX_JSON_DEPTH} */
  maxDepth?: number;
  /** Refuse NUL in strings and keys. @defaultValue `true` */
  nul?: boolean;
  /** Prefix of every reported path (`payload` when inspecting an event's payload). @defaultValue none */
  path?: Array<string | number>;
}

/**
 * Walks a parsed JSON value without recursion — an explicit stack, so no input can overflow the call stack —
 * and reports every string or key Postgres cannot store and the first containers nested deeper than
 * `maxDepth` (the walk does not go below them). At most 20 problems are reported.
 */
export function inspectJson(value: unknown, options: InspectJsonOptions = {}): JsonProblem[] {
  const maxDepth = options.maxDepth ?? MAX_JSON_DEPTH;
  const nul = options.nul ?? true;
  const problems: JsonProblem[] = [];
  // Each entry links to its parent rather than carrying a copy of its path, so a deep value costs linear
  // memory; a path is spelled out only for the few nodes that have a problem. `depth` counts the containers
  // around a node: the root object's members are at depth 1.
  interface Entry {
    node: unknown;
    parent: Entry | undefined;
    key: string | number | undefined;
    depth: number;
  }
  const pathOf = (entry: Entry, key?: string): Array<string | number> => {
    const path: Array<string | number> = key === undefined ? [] : [key];
    for (let at: Entry | undefined = entry; at?.key !== undefined; at = at.parent) path.unshift(at.key);
    return [...(options.path ?? []), ...path];
  };
  const stack: Entry[] = [{ node: value, parent: undefined, key: undefined, depth: 0 }];
  while (stack.length > 0 && problems.length < MAX_REPORTED_PROBLEMS) {
    const entry = stack.pop()!;
    const { node, depth } = entry;
    if (typeof node === 'string') {
      const problem = unstorableTextProblem(node, { nul });
      if (problem) problems.push({ path: pathOf(entry), message: problem });
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    if (depth >= maxDepth) {
      problems.push({ path: pathOf(entry), message: `is nested deeper than ${maxDepth} levels` });
      continue;
    }
    if (Array.isArray(node)) {
      for (let index = node.length - 1; index >= 0; index--)
        stack.push({ node: node[index], parent: entry, key: index, depth: depth + 1 });
      continue;
    }
    const entries = Object.entries(node);
    for (let index = entries.length - 1; index >= 0; index--) {
      const [key, inner] = entries[index]!;
      const problem = unstorableTextProblem(key, { nul });
      if (problem) problems.push({ path: pathOf(entry, key), message: `key ${problem}` });
      else stack.push({ node: inner, parent: entry, key, depth: depth + 1 });
    }
  }
  return problems;
}

/** A problem path as the API reports it: dotted, `(root)` for the whole value. */
export function formatPath(path: ReadonlyArray<string | number>): string {
  return path.length === 0 ? '(root)' : path.map(String).join('.');
}

/**
 * A zod refinement over {@link inspectJson}: adds one issue per problem, at its path. Used by schemas whose
 * values are stored as jsonb or text (events), so they are safe even when they do not come through the API.
 */
export function refuseUnstorableJson(options: Omit<InspectJsonOptions, 'path'> = {}) {
  return (value: unknown, ctx: z.core.$RefinementCtx): void => {
    for (const problem of inspectJson(value, options))
      ctx.addIssue({ code: 'custom', message: problem.message, path: problem.path });
  };
}

/**
 * Throws a {@link ValidationError} when `value` holds text Postgres cannot store or is nested too deep. `what`
 * names the input ("request body", "query"); each detail names the path.
 */
export function assertStorableJson(value: unknown, what: string, options: InspectJsonOptions = {}): void {
  const problems = inspectJson(value, options);
  if (problems.length === 0) return;
  const details = problems.map((problem) => ({ path: formatPath(problem.path), message: problem.message }));
  throw new ValidationError(`invalid ${what}: ${summarize(details)}`, details);
}

const STORABLE_DEPTH = 100;
// A high surrogate not followed by a low one, a low one not preceded by a high one, or NUL (linear: no backtracking).
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]|\u0000/g;

declare global {
  interface String {
    /** ES2024, in Node since 20.0; the project's `lib` is ES2023 (Node 20 lacks other ES2024 parts). */
    isWellFormed(): boolean;
  }
}

/** Whether Postgres can store `value` as it is: no lone surrogate (isWellFormed, native) and no NUL. */
function isStorableText(value: string): boolean {
  return value.isWellFormed() && !value.includes('\u0000');
}

/** A string Postgres can store in text and jsonb: lone surrogates and NUL become U+FFFD. */
export function storableText(value: string): string {
  return isStorableText(value) ? value : value.replace(UNSTORABLE, '\uFFFD');
}

/** Whether {@link toStorableJson} would change nothing: a walk that allocates nothing. */
function isStorableJson(value: unknown, depth: number): boolean {
  if (typeof value === 'string') return isStorableText(value);
  if (value === null || typeof value !== 'object' || value instanceof Date) return true;
  if (depth >= STORABLE_DEPTH) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (!isStorableJson(item, depth + 1)) return false;
    return true;
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    if (!isStorableText(key) || !isStorableJson((value as Record<string, unknown>)[key], depth + 1))
      return false;
  }
  return true;
}

/**
 * `value` itself when Postgres can store it as jsonb (the usual case: checked without copying, since the
 * supervisor and the backtest call this for every decision), else a copy that it can store. What Warden itself writes
 * (reasons, findings, evidence quoted from an agent's input, text cut at a length limit) can contain a lone
 * surrogate or a NUL even when the input did not — a decoded `$'\ud800'`, a message cut inside an emoji —
 * and a decision Postgres refuses is a decision never recorded. Past 100 levels a value is replaced by a note.
 */
export function toStorableJson<T>(value: T, depth = 0): T {
  if (depth === 0 && isStorableJson(value, 0)) return value;
  return storableCopy(value, depth);
}

function storableCopy<T>(value: T, depth: number): T {
  if (typeof value === 'string') return storableText(value) as T;
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  if (depth >= STORABLE_DEPTH) return '(nested too deep to store)' as T;
  if (Array.isArray(value)) return value.map((item) => storableCopy(item, depth + 1)) as T;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) out[storableText(key)] = storableCopy(inner, depth + 1);
  return out as T;
}
