/**
 * Named errors that carry meaning across Warden. Each has a stable machine `code`, and each code has exactly one
 * outcome in {@link ERROR_OUTCOMES}: the HTTP status the API answers with, and whether a queue job that failed
 * with it may be retried. The code type is the table's keys, so an error class with a code the table does not
 * map fails to compile.
 */

/** One problem with an input, located by a dotted path (`events.3.event_id`, `thresholds.error_rate`). */
export interface ErrorDetail {
  path: string;
  message: string;
}

/** How an error ends wherever it surfaces. */
export interface ErrorOutcome {
  /** The status the API answers with (a 5xx only for Warden's own faults). */
  httpStatus: number;
  /**
   * Whether a queue job that failed with it may run again. False for faults a retry cannot fix (bad input,
   * a refusal): the job fails at once instead of burning its attempts.
   */
  retryable: boolean;
}

/** Every Warden error code and its outcome. Add a code here when you add an error class. */
export const ERROR_OUTCOMES = {
  // Input and access
  validation_error: { httpStatus: 400, retryable: false },
  config_error: { httpStatus: 500, retryable: false },
  unauthorized: { httpStatus: 401, retryable: false },
  forbidden: { httpStatus: 403, retryable: false },
  // "Not found" may be a row another transaction has not committed yet; "conflict" a race that settles.
  not_found: { httpStatus: 404, retryable: true },
  conflict: { httpStatus: 409, retryable: true },
  // A deploy applies the migrations; the job runs once they are.
  migrations_behind: { httpStatus: 503, retryable: true },
  // Postgres or Redis cannot be reached right now (a restart, a failover): come back later, and a job retries.
  unavailable: { httpStatus: 503, retryable: true },
  // Supervisor
  shell_syntax: { httpStatus: 400, retryable: false },
  // Lead miner
  lead_scan_lock_unavailable: { httpStatus: 503, retryable: true },
  lead_scan_failed: { httpStatus: 500, retryable: true },
  lead_scan_already_handled: { httpStatus: 409, retryable: false },
  // Executor
  checksum_mismatch: { httpStatus: 400, retryable: false },
  forbidden_path: { httpStatus: 403, retryable: false },
  writegate_denied: { httpStatus: 403, retryable: false },
  self_approval: { httpStatus: 403, retryable: false },
  invalid_state: { httpStatus: 409, retryable: false },
  idempotency_conflict: { httpStatus: 409, retryable: false },
  execution_in_progress: { httpStatus: 409, retryable: true },
  cas_mismatch: { httpStatus: 409, retryable: false },
  stale_lock: { httpStatus: 409, retryable: true },
} as const satisfies Record<string, ErrorOutcome>;

export type WardenErrorCode = keyof typeof ERROR_OUTCOMES;

export abstract class WardenError extends Error {
  abstract readonly code: WardenErrorCode;
  readonly details: ErrorDetail[];

  constructor(message: string, details: ErrorDetail[] = []) {
    super(message);
    this.name = new.target.name;
    this.details = details;
  }

  /** The status the API answers with; see {@link ERROR_OUTCOMES}. */
  get httpStatus(): number {
    return ERROR_OUTCOMES[this.code].httpStatus;
  }

  /** Whether a queue job that failed with this error may run again; see {@link ERROR_OUTCOMES}. */
  get retryable(): boolean {
    return ERROR_OUTCOMES[this.code].retryable;
  }
}

/** Whether a job that threw `error` may run again: Warden errors say so themselves; any other fault (a lost connection, a timeout) may pass. */
export function isRetryable(error: unknown): boolean {
  return error instanceof WardenError ? error.retryable : true;
}

/** Input (HTTP body, job payload, CLI flag, config or policy file) does not match its schema. */
export class ValidationError extends WardenError {
  readonly code = 'validation_error';
}

/** Configuration read at start-up is invalid; the process should exit with this message. */
export class ConfigError extends WardenError {
  readonly code = 'config_error';
}

export class UnauthorizedError extends WardenError {
  readonly code = 'unauthorized';
}

export class ForbiddenError extends WardenError {
  readonly code = 'forbidden';
}

/** The object does not exist, or belongs to another tenant (the two are indistinguishable on purpose). */
export class NotFoundError extends WardenError {
  readonly code = 'not_found';
}

export class ConflictError extends WardenError {
  readonly code = 'conflict';
}

/** The database has migrations that this build knows and the database has not applied. */
export class MigrationsBehindError extends WardenError {
  readonly code = 'migrations_behind';
  constructor(readonly pending: string[]) {
    super(
      `database is behind its migrations: ${pending.length} pending (${pending.join(', ')}); run \`warden migrate\``,
    );
  }
}
