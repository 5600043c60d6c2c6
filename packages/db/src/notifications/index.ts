export type * from './tables.js';
export * from './channels.js';
export * from './outbox.js';
export * from './deliveries.js';
