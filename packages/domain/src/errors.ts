/**
 * Named errors that carry meaning across Warden. Each has a stable machine `code`; the API maps each class
 * to an HTTP status in exactly one place (services/api/src/http-errors.ts) and workers map them to job
 * outcomes (a ValidationError is never retried).
 */

/** One problem with an input, located by a dotted path (`events.3.event_id`, `thresholds.error_rate`). */
export interface ErrorDetail {
  path: string;
  message: string;
}

export abstract class WardenError extends Error {
  abstract readonly code: string;
  readonly details: ErrorDetail[];

  constructor(message: string, details: ErrorDetail[] = []) {
    super(message);
    this.name = new.target.name;
    this.details = details;
  }
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
    super(`database is behind its migrations: ${pending.length} pending (${pending.join(', ')}); run \`warden migrate\``);
  }
}
