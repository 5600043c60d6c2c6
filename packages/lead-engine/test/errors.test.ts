// The lead engine's errors belong to the WardenError hierarchy: each has its code, and so its outcome.
import { describe, expect, it } from 'vitest';
import { WardenError, type LeadScanReport } from '@warden/domain';
import { LeadScanAlreadyHandledError, LeadScanFailedError } from '../src/index.js';

describe('lead engine errors', () => {
  it('should carry the report of a failed scan', () => {
    const report = { status: 'failed' } as LeadScanReport;
    const error = new LeadScanFailedError('lead scan of acme/24h failed: boom', report);
    expect(error).toBeInstanceOf(WardenError);
    expect(error).toMatchObject({ code: 'lead_scan_failed', name: 'LeadScanFailedError', report });
  });

  it('should name the scan that was already handled, and not be retried', () => {
    const error = new LeadScanAlreadyHandledError('s-1');
    expect(error).toBeInstanceOf(WardenError);
    expect(error).toMatchObject({
      code: 'lead_scan_already_handled',
      name: 'LeadScanAlreadyHandledError',
      scanId: 's-1',
      message: 'lead scan s-1 was already run or is running elsewhere',
      retryable: false,
    });
  });
});
