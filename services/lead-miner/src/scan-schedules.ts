import type { Queue } from 'bullmq';

/** The lead miner's own job schedulers, until the scheduler service registers them as built-in triggers. */
export const LEAD_SCHEDULES = [
  { id: 'lead-scan-24h', window: '24h', setting: 'LEAD_SCHEDULE_24H' },
  { id: 'lead-scan-7d', window: '7d', setting: 'LEAD_SCHEDULE_7D' },
] as const;

export interface LeadScheduleSettings {
  LEAD_SCHEDULE_24H: string;
  LEAD_SCHEDULE_7D: string;
  LEAD_SCHEDULE_TZ: string;
}

/**
 * Brings the `lead-scans` job schedulers in line with the configuration: upserted (never removed and re-added,
 * which could lose or double a fire) when set, removed when `off`. Every replica does this on start; upserts of
 * the same scheduler are idempotent. Returns what is scheduled.
 */
export async function reconcileLeadSchedules(
  queue: Queue,
  settings: LeadScheduleSettings,
): Promise<Array<{ id: string; window: string; pattern: string }>> {
  const active: Array<{ id: string; window: string; pattern: string }> = [];
  for (const schedule of LEAD_SCHEDULES) {
    const pattern = settings[schedule.setting];
    if (pattern === 'off') {
      await queue.removeJobScheduler(schedule.id);
      continue;
    }
    await queue.upsertJobScheduler(
      schedule.id,
      { pattern, tz: settings.LEAD_SCHEDULE_TZ },
      {
        name: 'scan-all',
        data: { window: schedule.window, dry_run: false },
        opts: { attempts: 3, backoff: { type: 'exponential', delay: 5000 } },
      },
    );
    active.push({ id: schedule.id, window: schedule.window, pattern });
  }
  return active;
}
