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

/** The decision a guard was given, as the API returns it (`POST /v1/events` with `Prefer: wait`). */
export interface GuardDecision {
  decision_id: string;
  event_id: string;
  task_id: string;
  decision_type: 'ALLOW' | 'PAUSE' | 'BLOCK' | 'RETRY' | 'REQUIRE_REVIEW';
  reason: string;
  findings: Array<{ finding_id: string; code: string; kind: string; severity: string; description: string }>;
  actions: Array<{ action_type: string; target: string; params: Record<string, unknown> }>;
  policy: string;
  policy_version: string;
  would_have: string | null;
  created_at: string;
}

/**
 * Warden did not allow the action: the supervisor decided BLOCK (or anything that is neither ALLOW nor a
 * pause), or, while waiting for a release, the task was blocked, its gate expired or the task ended.
 * The agent must not run the action.
 */
export class WardenBlockedError extends Error {
  readonly taskId: string;
  /** The decision that refused the action; absent when the refusal came from the task's state while waiting. */
  readonly decision: GuardDecision | undefined;

  constructor(message: string, options: { taskId: string; decision?: GuardDecision }) {
    super(message);
    this.name = 'WardenBlockedError';
    this.taskId = options.taskId;
    this.decision = options.decision;
  }
}

/**
 * No decision (or no release) came within the wait: the action is not allowed. Sending the same event id
 * again is safe and picks up the decision once it is made.
 */
export class WardenGuardTimeoutError extends Error {
  readonly taskId: string;
  readonly eventId: string;

  constructor(message: string, options: { taskId: string; eventId: string }) {
    super(message);
    this.name = 'WardenGuardTimeoutError';
    this.taskId = options.taskId;
    this.eventId = options.eventId;
  }
}
