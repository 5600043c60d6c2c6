import type { Queue } from 'bullmq';

/**
 * The job schedulers earlier lead miners kept on `lead-scans` for the default scans. The scheduler service runs
 * those scans now, as each tenant's built-in triggers `lead-scan-24h` and `lead-scan-7d` (docs/lead-miner.md,
 * "Scheduling"); a scheduler left in Redis by an earlier version would keep adding jobs nobody runs.
 */
export const LEGACY_LEAD_SCHEDULER_IDS = ['lead-scan-24h', 'lead-scan-7d'] as const;

/** Removes the legacy job schedulers (a no-op once gone); returns the ids that were still there. */
export async function removeLegacyLeadSchedules(queue: Queue): Promise<string[]> {
  const removed: string[] = [];
  for (const id of LEGACY_LEAD_SCHEDULER_IDS) if (await queue.removeJobScheduler(id)) removed.push(id);
  return removed;
}
