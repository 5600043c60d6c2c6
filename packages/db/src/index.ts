export * from './connection.js';
export type * from './database.js';
export * from './migrator.js';
export * from './repositories/api-keys.js';
export * from './repositories/inbox.js';
export * from './repositories/tasks.js';
export * from './repositories/tenants.js';
export { migrations } from './migrations/index.js';
export * from './health.js';
