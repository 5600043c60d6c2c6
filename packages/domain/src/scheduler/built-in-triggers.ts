/**
 * The triggers every tenant gets without asking: the daily and weekly lead scans (docs/lead-miner.md,
 * "Scheduling"). The scheduler creates them once per tenant; from then on they are ordinary triggers, which an
 * operator pauses, resumes, re-times or deletes like any other.
 */
import type { TriggerDefinitionInput } from './trigger-definition.js';

/** Tag every built-in trigger carries, so `warden triggers list --tag builtin` finds them. */
export const BUILT_IN_TRIGGER_TAG = 'builtin';

function leadScanTrigger(window: '24h' | '7d', expression: string, every: string): TriggerDefinitionInput {
  return {
    event_name: `lead-scan-${window}`,
    expression,
    timezone: 'UTC',
    description: `Built-in ${every} lead scan of the tenant's ${window} window (docs/lead-miner.md)`,
    // The scan is deterministic code, not an agent: it is the trigger's fallback, served on every fire.
    fallback: { lead_scan: { window } },
    // A scan reads a window that ends when it runs, so a late one is still worth running (the lead miner's
    // former BullMQ schedulers ran a late fire too); skipping only after six hours keeps a day's scan.
    catchup_window_seconds: 6 * 3600,
    tags: [BUILT_IN_TRIGGER_TAG, 'lead-scan'],
  };
}

/**
 * The built-in triggers, by event name. Their schedules are those of the lead miner's former settings
 * (`LEAD_SCHEDULE_24H` = `0 2 * * *`, `LEAD_SCHEDULE_7D` = `0 3 * * 1`, UTC).
 */
export const BUILT_IN_TRIGGERS: readonly TriggerDefinitionInput[] = [
  leadScanTrigger('24h', '0 2 * * *', 'daily'),
  leadScanTrigger('7d', '0 3 * * 1', 'weekly'),
];
