/**
 * Deadlines of requests that wait for a person — a pause gate, a change set's approval. At the deadline the
 * request is denied (the task blocked, the change set rejected): nothing waits for ever. Pure functions of the
 * policy and a clock; the sweepers and the release/approve paths in `@warden/db` apply them.
 */
import { z } from 'zod';
import type { Severity } from './decisions.js';

/**
 * The expiry settings of the two policy files, spelled out here rather than imported: the policy schemas import
 * this module's schema, so importing their types back would make a cycle.
 */
export interface GateExpirySettings {
  gates: {
    expire_after_minutes: number;
    checkpoints: Record<string, { expire_after_minutes?: number | undefined } | undefined>;
  };
}
export interface ApprovalExpirySettings {
  approval: {
    expire_after_minutes: number;
    expire_after_minutes_by_risk: Partial<Record<Severity, number>>;
  };
}

/** 24 hours: long enough for a person to see a request the next working day, short enough that nothing rots. */
export const DEFAULT_EXPIRY_MINUTES = 24 * 60;

/** A wait in whole minutes: at least one minute, at most a year. */
export const ExpiryMinutesSchema = z
  .number()
  .int()
  .min(1)
  .max(365 * 24 * 60);

/** Who denied a request that expired, in `released_by` / `approval_by` and in audit rows. */
export const EXPIRY_ACTOR = 'system:expiry';

const MINUTE_MS = 60_000;

/** When a gate opened at `openedAt` at `checkpoint` expires: the checkpoint's own wait, else the default. */
export function gateDeadline(policy: GateExpirySettings, checkpoint: string, openedAt: Date): Date {
  const minutes =
    policy.gates.checkpoints[checkpoint]?.expire_after_minutes ?? policy.gates.expire_after_minutes;
  return new Date(openedAt.getTime() + minutes * MINUTE_MS);
}

/** When a change set submitted at `submittedAt` with effective risk `risk` stops waiting for approval. */
export function approvalDeadline(policy: ApprovalExpirySettings, risk: Severity, submittedAt: Date): Date {
  const minutes = policy.approval.expire_after_minutes_by_risk[risk] ?? policy.approval.expire_after_minutes;
  return new Date(submittedAt.getTime() + minutes * MINUTE_MS);
}

/** True once `now` has reached `deadline`: at the deadline itself the request is already denied. */
export function isPastDeadline(deadline: Date, now: Date): boolean {
  return now.getTime() >= deadline.getTime();
}
