import { actions, asRecord, finding, type FindingDraft, type Policy, type PolicyOutcome } from './policy.js';

export const NON_RETRYABLE_TYPES = [
  'redline_violation',
  'permission_denied',
  'invalid_config',
  'quota_exceeded',
  'auth_failed',
] as const;
export const RETRYABLE_TYPES = [
  'network_timeout',
  'connection_refused',
  'rate_limited',
  'service_unavailable',
  'temporary_failure',
] as const;
// Checked in this order: a message that is both ("invalid timeout") is not retried.
const NON_RETRYABLE_WORDS = [
  'permission denied',
  'access denied',
  'invalid',
  'forbidden',
  'unauthorized',
  'quota exceeded',
  'redline',
];
const RETRYABLE_WORDS = ['timeout', 'connection', 'network', 'rate limit', 'unavailable', 'temporary'];

export interface FailureClassification {
  retryable: boolean;
  /** How it was classified: by the declared type, by a keyword of the message, or by default. */
  basis: 'type' | 'keyword' | 'default';
  matched?: string;
}

/** Known types first, then keywords of the message (non-retryable words first); no match → not retryable. */
export function classifyFailure(
  errorType: string | undefined,
  message: string | undefined,
): FailureClassification {
  const type = errorType?.toLowerCase();
  if (type && (NON_RETRYABLE_TYPES as readonly string[]).includes(type))
    return { retryable: false, basis: 'type', matched: type };
  if (type && (RETRYABLE_TYPES as readonly string[]).includes(type))
    return { retryable: true, basis: 'type', matched: type };
  const text = (message ?? '').toLowerCase();
  const nonRetryable = NON_RETRYABLE_WORDS.find((word) => text.includes(word));
  if (nonRetryable) return { retryable: false, basis: 'keyword', matched: nonRetryable };
  const retryable = RETRYABLE_WORDS.find((word) => text.includes(word));
  if (retryable) return { retryable: true, basis: 'keyword', matched: retryable };
  return { retryable: false, basis: 'default' };
}

function failureCode(errorType: string | undefined): string {
  const cleaned = (errorType ?? '')
    .toUpperCase()
    .replace(/[^A-Z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return cleaned ? `FAILURE_${cleaned}`.slice(0, 80) : 'FAILURE_UNCLASSIFIED';
}

/** The most retries a task can be recorded with; a `retry_count` above it is not believed. */
export const RETRY_COUNT_CAP = 1000;
/** The most retries a task may declare for itself (the same bound as the policy file's `max_retries`). */
export const MAX_RETRIES_CAP = 100;

const text = (value: unknown) => (typeof value === 'string' && value.trim() !== '' ? value : undefined);
const isCount = (value: unknown, cap: number): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= cap;

/**
 * What a failure payload says, read from every shape producers send: the message from `error` (a string, or
 * an object's `message`), `error_message` or `message`; the type from `error_type`, `error.type`, `error_code`
 * or `error.code`.
 */
export function readFailure(payload: Record<string, unknown>): {
  errorType: string | undefined;
  message: string | undefined;
} {
  const error = asRecord(payload.error);
  const errorType =
    text(payload.error_type) ?? text(error?.type) ?? text(payload.error_code) ?? text(error?.code);
  const message =
    text(payload.error) ?? text(error?.message) ?? text(payload.error_message) ?? text(payload.message);
  return { errorType, message };
}

/**
 * TASK_FAILED: attribution and retry advice. Always one FAILURE/HIGH finding carrying the error code; a
 * retryable failure under the task's retry cap → RETRY (retry_count + 1), anything else → BLOCK.
 *
 * The retry count is the larger of what the event says and what Warden recorded, so an agent cannot buy
 * retries by reporting a smaller (or negative, or fractional) count; a count that is not a whole number in
 * 0..{@link RETRY_COUNT_CAP} is a finding and is not used. The decision is made either way.
 */
export const taskFailedPolicy: Policy = {
  name: 'task_failed_retry',
  version: '2',
  evaluate({ event, task, config }): PolicyOutcome {
    const { payload } = event;
    const { errorType, message } = readFailure(payload);
    const classification = classifyFailure(errorType, message);
    const findings: FindingDraft[] = [];

    const reported = payload.retry_count;
    const recorded = isCount(task.retry_count, RETRY_COUNT_CAP) ? task.retry_count : RETRY_COUNT_CAP;
    let retryCount = recorded;
    if (isCount(reported, RETRY_COUNT_CAP)) retryCount = Math.max(reported, recorded);
    else if (reported !== undefined) {
      findings.push(
        finding(
          'CONSTRAINT_INVALID_RETRY_COUNT',
          'CONSTRAINT',
          'MEDIUM',
          `retry_count must be a whole number from 0 to ${RETRY_COUNT_CAP}; the recorded count ${recorded} is used`,
          [{ retry_count: evidenceOf(reported), recorded }],
        ),
      );
    }
    const declared = task.metadata.max_retries;
    let maxRetries = config.thresholds.max_retries;
    if (isCount(declared, MAX_RETRIES_CAP)) maxRetries = declared;
    else if (declared !== undefined) {
      findings.push(
        finding(
          'CONSTRAINT_INVALID_MAX_RETRIES',
          'CONSTRAINT',
          'MEDIUM',
          `the task's max_retries must be a whole number from 0 to ${MAX_RETRIES_CAP}; the policy default ${maxRetries} is used`,
          [{ max_retries: evidenceOf(declared) }],
        ),
      );
    }

    const code = failureCode(errorType);
    const shownMessage =
      message === undefined ? undefined : message.length > 1000 ? `${message.slice(0, 1000)}…` : message;
    findings.unshift(
      finding(
        code,
        'FAILURE',
        'HIGH',
        `task failed: ${errorType?.slice(0, 200) ?? 'unknown error'}${shownMessage ? ` — ${shownMessage}` : ''}`,
        [
          {
            error_type: errorType?.slice(0, 200) ?? null,
            message: shownMessage ?? null,
            retryable: classification.retryable,
            basis: classification.basis,
            matched: classification.matched ?? null,
            retry_count: retryCount,
            max_retries: maxRetries,
          },
        ],
      ),
    );
    if (classification.retryable && retryCount < maxRetries) {
      const reason = `retryable failure (${classification.matched ?? errorType}); retry ${retryCount + 1} of ${maxRetries}`;
      return {
        decision_type: 'RETRY',
        reason,
        findings,
        actions: [actions.writeAudit()],
        task: { status: 'retrying', retry_count: retryCount + 1 },
      };
    }
    const reason = classification.retryable
      ? `retries exhausted (${retryCount} of ${maxRetries})`
      : `non-retryable failure (${classification.matched ?? 'unclassified'})`;
    return {
      decision_type: 'BLOCK',
      reason,
      findings,
      actions: [actions.markBlocked(reason), actions.writeAudit()],
      task: { status: 'blocked', retry_count: retryCount },
    };
  },
};

/** A bad value as evidence: numbers and short strings as they are, anything else by its type. */
function evidenceOf(value: unknown): unknown {
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'string') return value.slice(0, 100);
  return value === null ? null : `(${Array.isArray(value) ? 'array' : typeof value})`;
}
