export * from './lifecycle.js';
export * from './logger.js';
export * from './metrics.js';
export * from './ops-server.js';
export * from './readiness.js';
export * from './redact.js';
export * from './tracing.js';
