import { sha256Hex } from '../canonical-json.js';

/**
 * The identity of a lead finding: the first 16 hex digits of SHA-256 over
 * `rule_code|window_kind|key=value|key=value…` with the dimensions sorted by key (docs/lead-miner.md). Window timestamps
 * are left out on purpose, so the same problem seen by tomorrow's daily scan dedupes against today's.
 *
 * @example
 * leadFingerprint('pause_block_churn', '24h', { task_id: 'task-7' });
 * // sha256("pause_block_churn|24h|task_id=task-7").slice(0, 16)
 * leadFingerprint('decision_lag_anomaly', '7d', {}); // sha256("decision_lag_anomaly|7d").slice(0, 16)
 */
export function leadFingerprint(
  ruleCode: string,
  windowKind: string,
  dimensions: Readonly<Record<string, string>> = {},
): string {
  return sha256Hex(leadFingerprintSource(ruleCode, windowKind, dimensions)).slice(0, 16);
}

/** The text {@link leadFingerprint} hashes; shown in the docs and kept on the finding for anyone re-deriving it. */
export function leadFingerprintSource(
  ruleCode: string,
  windowKind: string,
  dimensions: Readonly<Record<string, string>> = {},
): string {
  const dims = Object.keys(dimensions)
    .sort()
    .map((key) => `${key}=${dimensions[key]}`);
  return [ruleCode, windowKind, ...dims].join('|');
}
