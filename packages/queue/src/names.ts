/** Every BullMQ queue Warden uses. Producers and consumers name queues only through this object. */
export const QUEUE_NAMES = {
  /** Task events to decide on (api, SDK) → supervisor-worker. */
  supervisorEvents: 'supervisor-events',
  /** Cron fires, and the scheduler's own follow-ups (advance a run, reconcile) → scheduler. */
  cronFires: 'cron-fires',
  /** Reports of trigger handlers (SDK trigger workers) → scheduler. */
  cronResults: 'cron-results',
  /** Lead scans → lead-miner. */
  leadScans: 'lead-scans',
  /** Approved or allowed change sets → executor. */
  changesets: 'changesets',
  /** Deliveries of notifications to a tenant's channels (webhook, Slack) → the api's notifier. */
  notifications: 'notifications',
} as const;

export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];
export const ALL_QUEUE_NAMES: readonly QueueName[] = Object.values(QUEUE_NAMES);

/**
 * The BullMQ `prefix` of one queue. On one Redis server it is the installation's prefix as is (keys
 * `warden:supervisor-events:…`, unchanged from before clusters were supported). On a Redis Cluster each queue
 * gets a hash tag of its own, `{warden:supervisor-events}`, as BullMQ documents for several queues on a
 * cluster: every key of one queue lands in one slot (its Lua scripts touch many keys at once), and different
 * queues land in different slots, so the queues spread over the masters.
 */
export function queueKeyPrefix(prefix: string, queue: string, connection: { isCluster: boolean }): string {
  return connection.isCluster ? `{${prefix}:${queue}}` : prefix;
}

/**
 * The BullMQ queue behind a trigger's `{ queue }` handler target: namespaced by tenant, so one tenant's
 * trigger can never feed another tenant's workers. Tenant ids may contain "." but handler queue names may not,
 * so the name splits back unambiguously at its last ".".
 */
export function triggerHandlerQueueName(tenantId: string, queue: string): string {
  return `cron-handler.${tenantId}.${queue}`;
}

/**
 * The Redis stream decisions are published on after commit (fields: tenant_id, task_id, event_id,
 * decision_id, decision_type). A stream rather than a queue: any number of readers can follow it, and an
 * agent runtime waiting on one task's decision reads without consuming it for others.
 */
export function decisionStreamKey(prefix: string): string {
  return `${prefix}:stream:supervisor-decisions`;
}

/**
 * The Redis pub/sub channel on which the API announces a newly active policy version (JSON
 * `{ tenant_id, kind, version }`); services reload at once, and poll Postgres in case a message was missed.
 */
export function policyActivationChannel(prefix: string): string {
  return `${prefix}:policies:activated`;
}
