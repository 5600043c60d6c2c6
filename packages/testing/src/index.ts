export * from './database.js';
export * from './redis.js';
export * from './servers.js';
export * from './template.js';
export * from './wait.js';
