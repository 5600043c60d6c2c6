export * from './decide.js';
export * from './policy.js';
export * from './policy-registry.js';
export * from './task-created-policy.js';
export * from './task-failed-policy.js';
export * from './task-step-completed-policy.js';
