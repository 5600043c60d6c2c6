/**
 * What the steps and outcomes of the pipeline share: the runner's dependencies and options, the attempt under
 * way (the change set, its workspace and the lock held on it), and what each step hands to the next.
 */
import type { ChangeSetHeadRow, ChangeSetRow, ChangeSetStepRecord, Db, NewJournalEntry } from '@warden/db';
import {
  EXECUTING_CHANGESET_STATUSES,
  type ChangePlan,
  type ChangeSetStatus,
  type CheckOutcome,
  type ExecutionStepName,
  type FileChange,
} from '@warden/domain';
import type { Logger } from '@warden/observability';
import type { TenantPolicySource } from '@warden/runtime';
import type { HealthChecker } from '../health-checker.js';
import type { JournalRecovery } from '../journal-recovery.js';
import type { ExecutorMetrics } from '../metrics.js';
import type { LoadedWriteGatePolicy } from '../policy-loader.js';
import type { VerificationSandbox } from '../sandbox/index.js';
import type { PathInspection, WorkspaceFs } from '../workspace-fs.js';
import type { HeldWorkspace, WorkspaceLocks } from '../workspace-lock.js';
import type { Workspace, WorkspaceRegistry } from '../workspaces.js';
import type { AttemptRef, StepRecorder } from './step-recorder.js';

/** Points of an execution where a hook may pause it (tests: stale holders, crashes, swapped directories). */
export type ExecutionPoint = 'locked' | 'validated' | 'backed_up' | 'applied' | 'verified';

export interface ExecutionHookContext {
  tenant_id: string;
  changeset_id: string;
  workspace: string;
  attempt: number;
  fence_token: string;
}

export interface ExecutorHooks {
  /** Awaited at each point; a hook that throws fails the execution there as an infrastructure error. */
  at?(point: ExecutionPoint, context: ExecutionHookContext): Promise<void> | void;
}

export interface ChangeSetRunnerOptions {
  db: Db;
  logger: Logger;
  /** A tenant's WriteGate policy: its active stored version, else the file (taken once per attempt). */
  policy: TenantPolicySource<LoadedWriteGatePolicy>;
  workspaces: WorkspaceRegistry;
  locks: WorkspaceLocks;
  recovery: JournalRecovery;
  healthChecker: HealthChecker;
  executorId: string;
  /** How long to wait for a busy workspace before deferring the job. */
  lockWaitMs: number;
  /** How long a duplicate waits for the identical change set that is running before deferring. */
  duplicateWaitMs: number;
  idempotencyRetentionMs: number;
  maxCommandTimeoutMs: number;
  /** Runs the policy's verifications (the `verifying` step and health checks of type `verification`). */
  sandbox: VerificationSandbox;
  outputLimitBytes: number;
  writeConcurrency: number;
  /** Fault injection: pause before each file write. @defaultValue `0` */
  writeDelayMs?: number;
  /** @defaultValue none (nothing is counted) */
  metrics?: ExecutorMetrics;
  /** Pause points for tests. @defaultValue none */
  hooks?: ExecutorHooks;
}

export type ExecuteOutcome =
  | { status: 'done'; changeset_status: ChangeSetStatus; replayed_from?: string }
  /** Nothing to do: unknown, not executable, or taken over by another holder. */
  | { status: 'skipped'; reason: string }
  /** Not now: the workspace is busy or an identical change set is running. Try again in `retryInMs`. */
  | { status: 'deferred'; reason: string; retryInMs: number };

/** What every step and outcome gets: the runner's options and the one recorder of steps. */
export interface Pipeline {
  options: ChangeSetRunnerOptions;
  recorder: StepRecorder;
}

/** An execution attempt that holds its workspace. */
export interface Attempt extends AttemptRef {
  row: ChangeSetRow;
  held: HeldWorkspace;
  workspace: Workspace;
  fs: WorkspaceFs;
  log: Logger;
  /** The tenant's WriteGate policy when the attempt started: it re-checks, sizes and verifies the whole attempt. */
  policy: LoadedWriteGatePolicy;
}

/** What the `validating` step established: the change set as stored, what is on disk for each path. */
export interface Validated {
  plan: ChangePlan;
  changes: FileChange[];
  inspections: Map<string, PathInspection>;
  /** The `validating` step, recorded (and the status moved to `backing_up`) with the journal. */
  step: ChangeSetStepRecord;
}

/** The journal the `backing_up` step committed, as the apply and a rollback use it. */
export interface Journal {
  id: string;
  entries: NewJournalEntry[];
  /** Directories the apply creates, parents first. */
  createdDirs: string[];
}

/** A failure after files may have been written: it ends in a rollback. */
export interface Failure {
  step: Extract<ExecutionStepName, 'applying' | 'verifying' | 'health_checking'>;
  code: string;
  message: string;
  checks?: CheckOutcome[];
}

/** Statuses an execution may start (or settle a refusal or replay) from: not started, or left half-way. */
export const EXECUTABLE_STATUSES: readonly ChangeSetStatus[] = ['pending', ...EXECUTING_CHANGESET_STATUSES];

/** A change set's key and the attempt that comes next, for steps recorded before the workspace is held. */
export function nextAttempt(row: ChangeSetHeadRow): AttemptRef {
  return { key: { tenant_id: row.tenant_id, changeset_id: row.changeset_id }, attempt: row.attempts + 1 };
}
