export * from './runtime.js';
export * from './policy-file.js';
