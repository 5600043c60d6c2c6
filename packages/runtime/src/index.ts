export * from './runtime.js';
export * from './policy-file.js';
export * from './run-main.js';
export * from './periodic-task.js';
export * from './group-committer.js';
export * from './close-worker.js';
export * from './dependency-errors.js';
export * from './egress.js';
