/**
 * How a finished restore is recorded, by a rollback and by crash recovery alike. Kept apart from the rollback
 * outcome so crash recovery can use it without the pipeline's types.
 */
import { executionResult, type CheckOutcome, type FileCounts } from '@warden/domain';
import type { RestoreResult } from '../workspace-restorer.js';
import type { AttemptRef, Move, StepRecorder } from './step-recorder.js';

export interface RestoreRecord {
  of: AttemptRef;
  journalId: string;
  /** The idempotency record to mark failed. @defaultValue left as it is */
  idempotency?: { key: string; retentionMs: number };
  restored: RestoreResult;
  /** What the execution had done before it failed. @defaultValue nothing */
  files?: FileCounts;
  checks?: CheckOutcome[];
  applyMs?: number | null;
  messages: {
    /** The step's message when every file is back as it was. */
    restored: string;
    /** The step's message when some are not. */
    incomplete: string;
    /** The change set's error message when some are not. */
    error: string;
  };
  /** Added to the step's detail. @defaultValue nothing */
  detail?: Record<string, unknown>;
}

/** How a rollback's message mentions paths someone else changed meanwhile (left as they are). */
export function conflictNote(conflicts: readonly string[]): string {
  return conflicts.length === 0
    ? ''
    : `; ${conflicts.length} path(s) changed by someone else were left as they are: ${conflicts.join('; ')}`;
}

/**
 * How a finished restore is settled, by a rollback and by crash recovery alike: the change set and its journal
 * `rolled_back` (every file it wrote byte-identical to before; paths someone else changed meanwhile are left
 * alone and listed as `conflicts`) or `rollback_failed`, the idempotency record failed (the
 * change set may be submitted again), and a `rollback` step with what was restored.
 */
export function restoreSettlement(
  recorder: StepRecorder,
  record: RestoreRecord,
): { outcome: 'rolled_back' | 'rollback_failed'; move: Move } {
  const { restored } = record;
  const outcome = restored.identical ? 'rolled_back' : 'rollback_failed';
  const result = executionResult({
    outcome,
    ...(record.files ? { files: record.files } : {}),
    ...(record.checks ? { checks: record.checks } : {}),
    applyMs: record.applyMs ?? null,
    rollbackMs: restored.durationMs,
  });
  return {
    outcome,
    move: {
      patch: {
        status: outcome,
        finished_at: new Date(),
        result,
        ...(restored.identical
          ? {}
          : { error_code: 'rollback_failed', error_message: record.messages.error }),
      },
      journal: { id: record.journalId, phase: outcome },
      ...(record.idempotency
        ? {
            idempotency: {
              key: record.idempotency.key,
              state: 'failed' as const,
              result,
              retentionMs: record.idempotency.retentionMs,
            },
          }
        : {}),
      steps: [
        recorder.entry(record.of, {
          step: 'rollback',
          status: restored.identical ? 'ok' : 'failed',
          message: restored.identical ? record.messages.restored : record.messages.incomplete,
          detail: {
            restored: restored.restored,
            removed: restored.removed,
            rollback_ms: restored.durationMs,
            problems: restored.problems,
            conflicts: restored.conflicts,
            ...record.detail,
          },
          event: restored.identical ? 'CHANGESET_ROLLED_BACK' : 'CHANGESET_ROLLBACK_FAILED',
          durationMs: restored.durationMs,
          level: restored.identical ? 'warn' : 'error',
        }),
      ],
    },
  };
}
