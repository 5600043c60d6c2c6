import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

const base = { DATABASE_URL: 'postgres://localhost/x', REDIS_URL: 'redis://localhost:6379' };
const problem = (env: Record<string, string>) => {
  try {
    loadConfig({ ...base, ...env });
  } catch (error) {
    return (error as Error).message;
  }
  return 'accepted';
};

describe('lead-miner schedule settings', () => {
  it('should start without any schedule setting: the scheduler owns the default scans', () => {
    expect(problem({})).toBe('accepted');
    expect(loadConfig(base)).not.toHaveProperty('LEAD_SCHEDULE_24H');
  });

  // The default scans are the scheduler's built-in triggers now: a deployment still setting the old variables
  // (for instance `off`, to scan with an external cron) must learn that they no longer do anything.
  it.each([
    ['LEAD_SCHEDULE_24H', 'off'],
    ['LEAD_SCHEDULE_7D', '0 3 * * 1'],
    ['LEAD_SCHEDULE_TZ', 'UTC'],
  ])('should refuse %s=%s, naming the variable and the trigger that replaced it', (name, value) => {
    expect(problem({ [name]: value })).toMatch(
      new RegExp(`${name}.*no longer read.*built-in triggers lead-scan-24h and lead-scan-7d`),
    );
  });
});
