export * from './policy-diff.js';
export * from './policy-kinds.js';
export * from './policy-versions.js';
export * from './policy-lifecycle.js';
export * from './policy-promotion.js';
