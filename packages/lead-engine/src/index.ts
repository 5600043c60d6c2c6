export * from './errors.js';
export * from './scan-lock.js';
export * from './run-lead-scan.js';
export { createLeadFollowUp, type LinkLeadFollowUpResult } from './follow-ups.js';
export * from './finding-changes.js';
