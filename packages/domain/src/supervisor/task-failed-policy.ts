import { actions, asRecord, finding, type Policy, type PolicyOutcome } from './policy.js';

export const NON_RETRYABLE_TYPES = ['redline_violation', 'permission_denied', 'invalid_config', 'quota_exceeded', 'auth_failed'] as const;
export const RETRYABLE_TYPES = ['network_timeout', 'connection_refused', 'rate_limited', 'service_unavailable', 'temporary_failure'] as const;
// Checked in this order: a message that is both ("invalid timeout") is not retried.
const NON_RETRYABLE_WORDS = ['permission denied', 'access denied', 'invalid', 'forbidden', 'unauthorized', 'quota exceeded', 'redline'];
const RETRYABLE_WORDS = ['timeout', 'connection', 'network', 'rate limit', 'unavailable', 'temporary'];

export interface FailureClassification {
  retryable: boolean;
  /** How it was classified: by the declared type, by a keyword of the message, or by default. */
  basis: 'type' | 'keyword' | 'default';
  matched?: string;
}

/** Known types first, then keywords of the message (non-retryable words first); no match → not retryable. */
export function classifyFailure(errorType: string | undefined, message: string | undefined): FailureClassification {
  const type = errorType?.toLowerCase();
  if (type && (NON_RETRYABLE_TYPES as readonly string[]).includes(type)) return { retryable: false, basis: 'type', matched: type };
  if (type && (RETRYABLE_TYPES as readonly string[]).includes(type)) return { retryable: true, basis: 'type', matched: type };
  const text = (message ?? '').toLowerCase();
  const nonRetryable = NON_RETRYABLE_WORDS.find((word) => text.includes(word));
  if (nonRetryable) return { retryable: false, basis: 'keyword', matched: nonRetryable };
  const retryable = RETRYABLE_WORDS.find((word) => text.includes(word));
  if (retryable) return { retryable: true, basis: 'keyword', matched: retryable };
  return { retryable: false, basis: 'default' };
}

function failureCode(errorType: string | undefined): string {
  const cleaned = (errorType ?? '').toUpperCase().replace(/[^A-Z0-9]+/g, '_').replace(/^_+|_+$/g, '');
  return cleaned ? `FAILURE_${cleaned}`.slice(0, 80) : 'FAILURE_UNCLASSIFIED';
}

/**
 * TASK_FAILED: attribution and retry advice. Always one FAILURE/HIGH finding carrying the error code; a
 * retryable failure under the task's retry cap → RETRY (retry_count + 1), anything else → BLOCK.
 */
export const taskFailedPolicy: Policy = {
  name: 'task_failed_retry',
  version: '1',
  evaluate({ event, task, config }): PolicyOutcome {
    const { payload } = event;
    const error = asRecord(payload.error) ?? {};
    const str = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
    const errorType = str(payload.error_type) ?? str(error.type) ?? str(payload.error_code) ?? str(error.code);
    const message = str(payload.error_message) ?? str(error.message) ?? str(payload.message);
    const classification = classifyFailure(errorType, message);
    const retryCount = typeof payload.retry_count === 'number' ? payload.retry_count : task.retry_count;
    const maxRetries = typeof task.metadata.max_retries === 'number' ? task.metadata.max_retries : config.thresholds.max_retries;
    const code = failureCode(errorType);
    const findings = [
      finding(code, 'FAILURE', 'HIGH', `task failed: ${errorType ?? 'unknown error'}${message ? ` — ${message}` : ''}`, [
        { error_type: errorType ?? null, message: message ?? null, retryable: classification.retryable, basis: classification.basis, matched: classification.matched ?? null, retry_count: retryCount, max_retries: maxRetries },
      ]),
    ];
    if (classification.retryable && retryCount < maxRetries) {
      const reason = `retryable failure (${classification.matched ?? errorType}); retry ${retryCount + 1} of ${maxRetries}`;
      return { decision_type: 'RETRY', reason, findings, actions: [actions.writeAudit()], task: { status: 'retrying', retry_count: retryCount + 1 } };
    }
    const reason = classification.retryable
      ? `retries exhausted (${retryCount} of ${maxRetries})`
      : `non-retryable failure (${classification.matched ?? 'unclassified'})`;
    return { decision_type: 'BLOCK', reason, findings, actions: [actions.markBlocked(reason), actions.writeAudit()], task: { status: 'blocked', retry_count: retryCount } };
  },
};
