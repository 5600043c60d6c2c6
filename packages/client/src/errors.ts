import type { ErrorDetail } from '@warden/domain';

/**
 * Warden answered, and the answer was an error: `status` is the HTTP status and `code`, `message` and
 * `details` come from the `{ error: { code, message, details } }` body. A 4xx is thrown at once, never
 * retried — sending the same request again would fail the same way. A 429 or 5xx is thrown only once the
 * retries are used up.
 */
export class WardenApiError extends Error {
  readonly status: number;
  /** Stable machine code, e.g. `validation_error`, `unauthorized`, `not_found`. */
  readonly code: string;
  /** One entry per failing input, located by a dotted path such as `events.3.event_type`. */
  readonly details: ErrorDetail[];

  constructor(status: number, code: string, message: string, details: ErrorDetail[] = []) {
    super(message);
    this.name = 'WardenApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/**
 * No answer came back: the connection failed or the request timed out, on every attempt. For
 * `sendEvent`/`sendEvents` the events may or may not have been stored; sending them again with the same
 * event ids is safe, since Warden counts a repeated id as a duplicate.
 */
export class WardenConnectionError extends Error {
  /** True when the last attempt ran past `timeoutMs`, false for a network failure. */
  readonly timedOut: boolean;
  readonly attempts: number;

  constructor(message: string, options: { cause: unknown; timedOut: boolean; attempts: number }) {
    super(message, { cause: options.cause });
    this.name = 'WardenConnectionError';
    this.timedOut = options.timedOut;
    this.attempts = options.attempts;
  }
}
