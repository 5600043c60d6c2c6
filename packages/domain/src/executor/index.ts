export * from './change-set.js';
export * from './change-set-view.js';
export * from './changed-lines.js';
export * from './checksum.js';
export * from './executor-errors.js';
export * from './path-safety.js';
export * from './write-gate.js';
export * from './writegate-policy.js';
