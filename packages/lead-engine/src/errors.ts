/**
 * The lead engine's errors, in the WardenError hierarchy: each code has one outcome (HTTP status, whether a
 * job may retry) in `ERROR_OUTCOMES` of @warden/domain.
 */
import { WardenError, type LeadScanReport } from '@warden/domain';

/** A scan that failed after it started; `report` says how far it got (and is what `--json` prints). */
export class LeadScanFailedError extends WardenError {
  readonly code = 'lead_scan_failed';

  constructor(
    message: string,
    readonly report: LeadScanReport,
  ) {
    super(message);
  }
}

/** The queued scan was already run (a redelivered job) or is running elsewhere: nothing to do. */
export class LeadScanAlreadyHandledError extends WardenError {
  readonly code = 'lead_scan_already_handled';

  constructor(readonly scanId: string) {
    super(`lead scan ${scanId} was already run or is running elsewhere`);
  }
}

/** Redis could not be asked for the scan lock (unreachable, timed out); `--force` scans without it. */
export class LeadScanLockUnavailableError extends WardenError {
  readonly code = 'lead_scan_lock_unavailable';
}
