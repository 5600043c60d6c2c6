/** Every BullMQ queue Warden uses. Producers and consumers name queues only through this object. */
export const QUEUE_NAMES = {
  /** Task events to decide on (api, SDK) → supervisor-worker. */
  supervisorEvents: 'supervisor-events',
  /** Decisions published after commit → agent runtimes waiting on them. */
  supervisorDecisions: 'supervisor-decisions',
  /** Cron fires → scheduler workers. */
  cronFires: 'cron-fires',
  /** Lead scans → lead-miner. */
  leadScans: 'lead-scans',
  /** Approved or allowed change sets → executor. */
  changesets: 'changesets',
} as const;

export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];
export const ALL_QUEUE_NAMES: readonly QueueName[] = Object.values(QUEUE_NAMES);
