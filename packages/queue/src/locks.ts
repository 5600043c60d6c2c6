/**
 * `@warden/queue/locks`: Redis connections and Redlock without the queues. A process that only takes locks
 * (`warden lead scan`, the lead scan's lock) imports this instead of the package's index, which loads BullMQ,
 * OpenTelemetry and the metrics with the queues: run from the TypeScript sources, that is 10–15 MB of the
 * process.
 */
export * from './redis.js';
export * from './redlock.js';
export { pingRedis } from './health.js';
