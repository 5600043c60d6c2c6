// Every Warden error carries its outcome: the HTTP status and whether a job may retry it, from one table.
import { describe, expect, it } from 'vitest';
import {
  ChecksumMismatchError,
  ConcurrentExecutionError,
  ConflictError,
  ERROR_OUTCOMES,
  NotFoundError,
  ValidationError,
  WardenError,
  isRetryable,
} from '../src/index.js';
import { ShellSyntaxError } from '../src/supervisor/shell/parse-shell-script.js';

describe('error outcomes', () => {
  it('should give every code a 4xx or 5xx status', () => {
    for (const [code, outcome] of Object.entries(ERROR_OUTCOMES)) {
      expect(outcome.httpStatus, code).toBeGreaterThanOrEqual(400);
      expect(outcome.httpStatus, code).toBeLessThan(600);
    }
  });

  it('should read the status and retry verdict of an error from its code', () => {
    expect(new ValidationError('bad').httpStatus).toBe(400);
    expect(new ValidationError('bad').retryable).toBe(false);
    expect(new NotFoundError('gone').httpStatus).toBe(404);
    expect(new ChecksumMismatchError('tampered').httpStatus).toBe(400);
    expect(new ConcurrentExecutionError('busy').retryable).toBe(true);
    expect(new ShellSyntaxError('unclosed quote').httpStatus).toBe(400);
  });

  it('should let a job retry a fault that is not a Warden error, and refuse one a retry cannot fix', () => {
    expect(isRetryable(new Error('connection reset'))).toBe(true);
    expect(isRetryable('thrown string')).toBe(true);
    expect(isRetryable(new ConflictError('race'))).toBe(true);
    expect(isRetryable(new ValidationError('bad payload'))).toBe(false);
  });

  it('should refuse at compile time an error class whose code has no outcome', () => {
    class UnmappedError extends WardenError {
      // @ts-expect-error — 'not_in_the_table' is not a key of ERROR_OUTCOMES: the table must map every code.
      readonly code = 'not_in_the_table';
    }
    // At run time the missing outcome has no status: this is why the compile-time check exists.
    expect(() => new UnmappedError('x').httpStatus).toThrow();
  });
});
