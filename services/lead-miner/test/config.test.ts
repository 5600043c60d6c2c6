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
  it('should take the defaults, "off", and any pattern a trigger would take', () => {
    expect(loadConfig(base)).toMatchObject({ LEAD_SCHEDULE_24H: '0 2 * * *', LEAD_SCHEDULE_TZ: 'UTC' });
    expect(problem({ LEAD_SCHEDULE_24H: 'off', LEAD_SCHEDULE_7D: '*/15 9-17 * * mon-fri' })).toBe('accepted');
    expect(problem({ LEAD_SCHEDULE_TZ: 'Europe/Rome' })).toBe('accepted');
  });

  // The old check only counted five words, so each of these reached BullMQ and failed (or fired) later.
  it.each([
    ['LEAD_SCHEDULE_24H', '*/100 * * * *', /LEAD_SCHEDULE_24H.*larger than its range 0-59/],
    ['LEAD_SCHEDULE_24H', '0 25 * * *', /LEAD_SCHEDULE_24H.*25 is out of range 0-23/],
    ['LEAD_SCHEDULE_7D', '0 0 L * *', /LEAD_SCHEDULE_7D.*day-of-month field "L"/],
    ['LEAD_SCHEDULE_7D', '0 0 * * * *', /LEAD_SCHEDULE_7D.*6 fields/],
    ['LEAD_SCHEDULE_7D', '@every 5m', /LEAD_SCHEDULE_7D.*give 5 cron fields or "off"/],
    ['LEAD_SCHEDULE_TZ', 'utc', /LEAD_SCHEDULE_TZ.*did you mean "UTC"/],
    ['LEAD_SCHEDULE_TZ', 'EST', /LEAD_SCHEDULE_TZ.*not an IANA time zone name/],
  ])('should refuse %s=%s, naming the variable and the problem', (name, value, message) => {
    expect(problem({ [name]: value })).toMatch(message);
  });
});
