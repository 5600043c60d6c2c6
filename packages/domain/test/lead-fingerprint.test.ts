// The fingerprint of a lead finding: first 16 hex of SHA-256 over `rule_code|window_kind|sorted key=value dims`.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { leadFingerprint, leadFingerprintSource } from '../src/index.js';

const sha16 = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);

describe('leadFingerprint', () => {
  it('should hash the rule, the window kind and the dimensions sorted by key', () => {
    expect(
      leadFingerprintSource('retry_recommended_but_fails', '24h', {
        task_id: 't-1',
        retry_decision_id: 'd-9',
      }),
    ).toBe('retry_recommended_but_fails|24h|retry_decision_id=d-9|task_id=t-1');
    expect(
      leadFingerprint('retry_recommended_but_fails', '24h', { task_id: 't-1', retry_decision_id: 'd-9' }),
    ).toBe(sha16('retry_recommended_but_fails|24h|retry_decision_id=d-9|task_id=t-1'));
    expect(leadFingerprint('decision_lag_anomaly', '7d')).toBe(sha16('decision_lag_anomaly|7d'));
  });

  it('should not depend on the order the dimensions were given in', () => {
    expect(leadFingerprint('r', '24h', { b: '2', a: '1' })).toBe(
      leadFingerprint('r', '24h', { a: '1', b: '2' }),
    );
  });

  it('should be 16 lower-case hex digits and differ by rule, window kind and dimension value', () => {
    const base = leadFingerprint('pause_block_churn', '24h', { task_id: 'x' });
    expect(base).toMatch(/^[0-9a-f]{16}$/);
    expect(
      new Set([
        base,
        leadFingerprint('pause_block_churn', '7d', { task_id: 'x' }),
        leadFingerprint('pause_block_churn', '24h', { task_id: 'y' }),
        leadFingerprint('high_risk_allow', '24h', { task_id: 'x' }),
      ]).size,
    ).toBe(4);
  });

  it('should be pinned: a change here breaks dedupe against every stored finding', () => {
    expect(
      leadFingerprint('blocked_reason_spike', '24h', { finding_code: 'REDLINE_FORBIDDEN_COMMAND' }),
    ).toBe(sha16('blocked_reason_spike|24h|finding_code=REDLINE_FORBIDDEN_COMMAND'));
    expect(leadFingerprint('redline_ratio_increase', '24h')).toBe('5481d1b6811935c6');
  });
});
