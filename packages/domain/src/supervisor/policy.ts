import type { Action, DecisionType, Finding, FindingKind, Severity } from '../decisions.js';
import type { TaskEvent } from '../events.js';
import type { SupervisorPolicyFile } from '../policy-file.js';
import type { TaskStatus } from '../tasks.js';

/** What a policy knows of the task the event is about, as stored before this event. */
export interface TaskContext {
  /** `undefined` on first sight of the task id. */
  status: TaskStatus | undefined;
  metadata: Record<string, unknown>;
  retry_count: number;
}

/** Another task of the same tenant that is running and holds exclusive resources. */
export interface RunningTaskResources {
  task_id: string;
  resources: string[];
}

export interface PolicyInput {
  event: TaskEvent;
  task: TaskContext;
  /** Other running tasks of the tenant that declare exclusive resources (for conflict checks). */
  runningTasks: RunningTaskResources[];
  config: SupervisorPolicyFile;
}

/** A finding before it gets its id (ids derive from the decision, so redeliveries give the same ids). */
export type FindingDraft = Omit<Finding, 'finding_id'>;

export interface PolicyOutcome {
  decision_type: DecisionType;
  reason: string;
  findings: FindingDraft[];
  actions: Action[];
  /** Task fields this decision changes; absent fields stay as they are. */
  task?: { status?: TaskStatus; retry_count?: number; metadata?: Record<string, unknown> };
}

/** A policy is a pure function of its input: no I/O, no clock, no randomness. */
export interface Policy {
  name: string;
  version: string;
  evaluate(input: PolicyInput): PolicyOutcome;
}

export function finding(
  code: string,
  kind: FindingKind,
  severity: Severity,
  description: string,
  evidence: unknown[] = [],
): FindingDraft {
  return { code, kind, severity, description, evidence };
}

export const PAUSE_CHECKPOINT = 'open_plan';

export const actions = {
  pauseGate: (reason: string, checkpoint = PAUSE_CHECKPOINT): Action => ({
    action_type: 'pause_gate',
    target: 'task',
    params: { checkpoint, reason },
  }),
  markBlocked: (reason: string): Action => ({
    action_type: 'mark_blocked',
    target: 'task',
    params: { reason },
  }),
  markVerifying: (): Action => ({ action_type: 'mark_verifying', target: 'task', params: {} }),
  writeAudit: (): Action => ({ action_type: 'write_audit', target: 'task_audits', params: {} }),
  noop: (): Action => ({ action_type: 'noop', target: 'task', params: {} }),
};

export function summarizeFindings(findings: FindingDraft[]): string {
  return findings.map((f) => `${f.code} (${f.severity})`).join(', ');
}

/** Reads `value` as a plain object, or `undefined`. */
export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

export function asStringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}
