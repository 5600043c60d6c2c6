/**
 * A trigger's live state — who paused it and its circuit breaker — and how pausing, resuming and the
 * breaker's transitions change it, each with its audit row. Pure: the caller holds the trigger's row lock,
 * writes the returned change and appends the audit row in one transaction, so every replica sees one state.
 */
import { CLOSED_BREAKER, type BreakerState } from './circuit-breaker.js';
import { triggerAudit, type AuditDraft } from './trigger-audits.js';

/** Who paused a trigger: a person, or the breaker when it opened. */
export type PauseSource = 'manual' | 'circuit_breaker';

export interface TriggerLiveState {
  paused: boolean;
  pause_source: PauseSource | null;
  pause_note: string | null;
  paused_at: Date | null;
  paused_by: string | null;
  breaker: BreakerState;
  /** The breaker's window counts runs fired after this. */
  breaker_reset_at: Date | null;
}

/** The fields a transition sets; the others keep their values. */
export type TriggerStateChange = Partial<TriggerLiveState>;

/** What a transition comes to: the change to write (none when there is nothing to do) and its audit row. */
export interface TriggerTransition {
  change: TriggerStateChange | null;
  audit: AuditDraft | null;
}

const NOT_PAUSED = {
  paused: false,
  pause_source: null,
  pause_note: null,
  paused_at: null,
  paused_by: null,
} as const satisfies TriggerStateChange;

/**
 * A person pauses the trigger. Pausing one the breaker paused makes it a person's pause (no probe will resume
 * it); pausing one a person paused changes nothing.
 */
export function pauseByPerson(
  current: TriggerLiveState,
  input: { event_name: string; actor: string; note?: string; now: Date },
): TriggerTransition {
  if (current.paused && current.pause_source === 'manual') return { change: null, audit: null };
  return {
    change: {
      paused: true,
      pause_source: 'manual',
      pause_note: input.note ?? null,
      paused_at: current.paused_at ?? input.now,
      paused_by: input.actor,
    },
    audit: triggerAudit(input.event_name, 'TRIGGER_PAUSED', 'warn', {
      by: input.actor,
      note: input.note ?? null,
      previous_source: current.pause_source,
    }),
  };
}

/**
 * A person resumes the trigger; that also closes an open breaker (its window restarts). The audit row is
 * built once the backfill is known: see {@link triggerResumedAudit}. Null when the trigger is not paused.
 */
export function resumeByPerson(current: TriggerLiveState, now: Date): TriggerStateChange | null {
  if (!current.paused) return null;
  return {
    ...NOT_PAUSED,
    ...(current.breaker.state !== 'closed' ? { breaker: CLOSED_BREAKER, breaker_reset_at: now } : {}),
  };
}

/**
 * `TRIGGER_RESUMED`: who had paused it and for how long, the backfill asked for, and whether the breaker
 * closed.
 */
export function triggerResumedAudit(
  before: TriggerLiveState,
  input: {
    event_name: string;
    actor: string;
    note?: string;
    backfill: boolean;
    backfilled_runs: number;
    now: Date;
  },
): AuditDraft {
  return triggerAudit(input.event_name, 'TRIGGER_RESUMED', 'info', {
    by: input.actor,
    note: input.note ?? null,
    paused_by: before.paused_by,
    paused_source: before.pause_source,
    paused_for_seconds: before.paused_at
      ? Math.round((input.now.getTime() - before.paused_at.getTime()) / 1000)
      : null,
    backfill: input.backfill,
    backfilled_runs: input.backfilled_runs,
    closed_breaker: before.breaker.state !== 'closed',
  });
}

export type BreakerTransitionName = 'opened' | 'reopened' | 'closed' | 'probing';

/**
 * The breaker moves to `next`. Opening pauses the trigger with a note (unless already paused); closing
 * restarts the window and resumes the trigger if the breaker had paused it. Audited, except the start of a
 * half-open probe (the probe's own end is).
 */
export function breakerTransition(
  current: TriggerLiveState,
  input: {
    event_name: string;
    next: BreakerState;
    transition: BreakerTransitionName;
    failure_rate: number;
    runs: number;
    now: Date;
  },
): TriggerTransition {
  const { next, now } = input;
  const opening = input.transition === 'opened' || input.transition === 'reopened';
  const closing = input.transition === 'closed';
  const pausing = opening && !current.paused;
  const resuming = closing && current.paused && current.pause_source === 'circuit_breaker';
  const change: TriggerStateChange = {
    breaker: next,
    ...(closing ? { breaker_reset_at: now } : {}),
    ...(pausing
      ? {
          paused: true,
          pause_source: 'circuit_breaker' as const,
          pause_note: `circuit breaker open: ${next.reason ?? ''}`,
          paused_at: now,
          paused_by: 'scheduler',
        }
      : {}),
    ...(resuming ? NOT_PAUSED : {}),
  };
  if (input.transition === 'probing') return { change, audit: null };
  return {
    change,
    audit: triggerAudit(
      input.event_name,
      opening ? 'CIRCUIT_BREAKER_OPENED' : 'CIRCUIT_BREAKER_CLOSED',
      opening ? 'error' : 'info',
      {
        by: 'scheduler',
        transition: input.transition,
        reason: next.reason ?? (closing ? 'half-open probe succeeded' : null),
        failure_rate: input.failure_rate,
        window_runs: input.runs,
        paused_trigger: pausing,
        resumed_trigger: resuming,
      },
    ),
  };
}
