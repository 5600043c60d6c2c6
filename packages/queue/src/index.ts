export * from './health.js';
export * from './catalog.js';
export * from './job-ids.js';
export * from './names.js';
export * from './queues.js';
export * from './redis.js';
export * from './redlock.js';
export * from './worker.js';
