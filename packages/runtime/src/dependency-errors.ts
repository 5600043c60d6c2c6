import { WardenError } from '@warden/domain';

/** Which dependency a connection failure came from, as far as its error tells. */
export type Dependency = 'database' | 'queue' | 'dependency';

/**
 * Postgres or Redis cannot be reached right now (restarting, failing over, the network dropped it). Not the
 * caller's fault and not a bug: the API answers 503 with `Retry-After`, a queue job retries, a background pass
 * tries again on its next run.
 */
export class DependencyUnavailableError extends WardenError {
  readonly code = 'unavailable';

  constructor(
    readonly dependency: Dependency,
    override readonly cause: unknown,
  ) {
    // The driver's own message names hosts and ports: kept in `cause` for the log, never sent to a caller.
    super(
      `the ${dependency === 'dependency' ? 'database or queue' : dependency} is unavailable; try again shortly`,
    );
  }
}

/** Socket-level failures: the server is not there, or went away mid-conversation. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs of a server that is going away, not there yet or full: class 08 (connection exception),
 * 57P01 admin_shutdown (a fast stop or restart), 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up or
 * shutting down), 53300 too_many_connections.
 */
function isUnavailableSqlState(code: string): boolean {
  return code.startsWith('08') || ['57P01', '57P02', '57P03', '53300'].includes(code);
}

/** node-postgres reports a lost or never-made connection with plain Errors; these are their messages. */
const PG_CONNECTION_MESSAGES = [
  /^Connection terminated/, // "… unexpectedly", "… due to connection timeout"
  /^timeout exceeded when trying to connect/, // the pool's connectionTimeoutMillis
  /^Client has encountered a connection error and is not queryable/,
  /^Client was closed and is not queryable/,
];

/** ioredis, when Redis is away: no connection, no offline queue, or retries used up. */
const REDIS_CONNECTION_MESSAGES = [
  /^Connection is closed\.?$/,
  /^Stream isn't writeable and enableOfflineQueue options is false/,
  /^Reached the max retries per request limit/,
];

/**
 * The dependency a connection failure came from, or `undefined` when `error` is something else (a constraint
 * violation, a bug, bad input). Looks through `cause` and AggregateError's `errors` (Node reports a refused
 * connection to a name with several addresses as one AggregateError).
 */
export function unavailableDependencyOf(error: unknown, depth = 0): Dependency | undefined {
  if (error === null || typeof error !== 'object' || depth > 4) return undefined;
  if (error instanceof DependencyUnavailableError) return error.dependency;
  const { code, message, severity, name } = error as {
    code?: unknown;
    message?: unknown;
    severity?: unknown;
    name?: unknown;
  };
  const text = typeof message === 'string' ? message : '';
  // A Postgres error message carries a severity; its SQLSTATE says whether the server is going away.
  if (typeof code === 'string' && typeof severity === 'string')
    return isUnavailableSqlState(code) ? 'database' : undefined;
  if (PG_CONNECTION_MESSAGES.some((pattern) => pattern.test(text))) return 'database';
  if (name === 'MaxRetriesPerRequestError' || REDIS_CONNECTION_MESSAGES.some((pattern) => pattern.test(text)))
    return 'queue';
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return 'dependency';
  const nested = [
    (error as { cause?: unknown }).cause,
    ...(Array.isArray((error as { errors?: unknown }).errors) ? (error as { errors: unknown[] }).errors : []),
  ];
  for (const inner of nested) {
    const found = unavailableDependencyOf(inner, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** `error` as a {@link DependencyUnavailableError} when it is a connection failure, else `undefined`. */
export function asDependencyUnavailable(error: unknown): DependencyUnavailableError | undefined {
  if (error instanceof DependencyUnavailableError) return error;
  const dependency = unavailableDependencyOf(error);
  return dependency ? new DependencyUnavailableError(dependency, error) : undefined;
}
