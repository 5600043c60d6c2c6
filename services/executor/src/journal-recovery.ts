/**
 * Crash recovery (steps `recovery`, then `rollback`): a journal left in flight — its executor was killed, or
 * lost its lock — is finished by whoever holds the workspace next. Recovery rolls the change set back to the
 * journal's backups under the same rule as a rollback (only entries the apply reached, only where the file still
 * holds what the executor wrote; anything else is a conflict, left alone), checks the files are byte-identical, and records the outcome the way a rollback
 * does; a change set whose commit was recorded is never in flight, so there is nothing to roll forward.
 */
import {
  ACTIVE_JOURNAL_PHASES,
  findActiveJournals,
  findChangeSetHead,
  findJournal,
  listJournalEntries,
  recordChangeSetSteps,
  setJournalPhase,
  takeOverJournal,
  updateChangeSet,
  type ChangeSetJournalRow,
  type Db,
} from '@warden/db';
import { StaleLockError } from '@warden/domain';
import type { Logger } from '@warden/observability';
import type { ExecutorMetrics } from './metrics.js';
import { conflictNote, restoreSettlement } from './pipeline/restore-settlement.js';
import { settleChangeSet } from './pipeline/settle.js';
import { StepRecorder } from './pipeline/step-recorder.js';
import type { HeldWorkspace, WorkspaceLocks } from './workspace-lock.js';
import { restoreWorkspace } from './workspace-restorer.js';
import type { Workspace, WorkspaceRegistry } from './workspaces.js';

export interface JournalRecoveryOptions {
  db: Db;
  logger: Logger;
  locks: WorkspaceLocks;
  workspaces: WorkspaceRegistry;
  executorId: string;
  writeConcurrency: number;
  idempotencyRetentionMs: number;
  /** @defaultValue none (nothing is counted) */
  metrics?: ExecutorMetrics;
}

export class JournalRecovery {
  private readonly recorder: StepRecorder;

  constructor(private readonly options: JournalRecoveryOptions) {
    this.recorder = new StepRecorder(options.db);
  }

  /**
   * Recovers in-flight journals on this executor's workspaces: all of them (at start-up, before any job is
   * taken), or only those whose lease ran out (the periodic sweep: a holder that died or stalled). A workspace
   * another executor holds right now is skipped; the next sweep tries again. Returns how many were recovered.
   */
  async recoverAll(options: { onlyExpiredLeases: boolean; lockWaitMs: number }): Promise<number> {
    const { workspaces, logger, locks } = this.options;
    const journals = await findActiveJournals(this.options.db, {
      workspaces: workspaces.names(),
      ...(options.onlyExpiredLeases ? { leaseExpiredBefore: new Date() } : {}),
    });
    let recovered = 0;
    for (const name of [...new Set(journals.map((j) => j.workspace))]) {
      const workspace = workspaces.get(name)!;
      const held = await locks.acquire(name, {}, options.lockWaitMs);
      if (!held) {
        logger.info(
          { module: 'recovery', action: 'recover', status: 'skipped', workspace: name },
          `workspace "${name}" is held by another executor; its journals are left to it or the next sweep`,
        );
        continue;
      }
      try {
        recovered += await this.recoverWorkspace(held, workspace);
      } finally {
        await held.release();
      }
    }
    return recovered;
  }

  /** Recovers every in-flight journal of a workspace the caller holds. Returns how many. */
  async recoverWorkspace(held: HeldWorkspace, workspace: Workspace): Promise<number> {
    const journals = await findActiveJournals(this.options.db, { workspaces: [workspace.name] });
    for (const journal of journals) await this.recoverJournal(held, workspace, journal);
    return journals.length;
  }

  private async recoverJournal(
    held: HeldWorkspace,
    workspace: Workspace,
    found: ChangeSetJournalRow,
  ): Promise<void> {
    const { db, logger, metrics, executorId } = this.options;
    const key = { tenant_id: found.tenant_id, changeset_id: found.changeset_id };
    const log = logger.child({
      module: 'recovery',
      tenant_id: found.tenant_id,
      changeset_id: found.changeset_id,
      workspace: workspace.name,
      journal_id: found.journal_id,
    });
    // Take the journal over under our fencing token: the previous holder's status updates and writes now miss.
    const journal = await db.transaction().execute(async (trx) => {
      const current = await findJournal(trx, found.journal_id, { forUpdate: true });
      if (!current || !ACTIVE_JOURNAL_PHASES.includes(current.phase)) return undefined;
      await takeOverJournal(trx, current.journal_id, held.token, executorId, held.leaseUntil());
      await updateChangeSet(trx, key, {
        status: 'failed',
        fence_token: held.token,
        error_code: 'interrupted',
        error_message: `executor ${current.executor_id} stopped during ${current.phase} (fencing token ${current.fence_token}); rolled back by ${executorId}`,
      });
      await recordChangeSetSteps(trx, [
        this.recorder.entry(
          { key, attempt: current.attempt },
          {
            step: 'recovery',
            status: 'ok',
            message: `found in flight (${current.phase}) after executor ${current.executor_id} stopped; rolling back`,
            detail: {
              phase: current.phase,
              previous_executor: current.executor_id,
              previous_fence_token: current.fence_token,
              fence_token: held.token,
              recovered_by: executorId,
            },
            event: 'CHANGESET_RECOVERY_STARTED',
            level: 'warn',
          },
        ),
      ]);
      return current;
    });
    if (!journal) return;
    held.track(journal.journal_id);
    log.warn(
      { action: 'recover', status: 'started', phase: journal.phase, previous_executor: journal.executor_id },
      `recovering change set ${journal.changeset_id} found in flight (${journal.phase})`,
    );
    try {
      await setJournalPhase(db, journal.journal_id, 'rolling_back', { fenceToken: held.token });
      const restored = await restoreWorkspace({
        db,
        root: workspace.root,
        held,
        journalId: journal.journal_id,
        entries: await listJournalEntries(db, journal.journal_id),
        createdDirs: journal.created_dirs,
        concurrency: this.options.writeConcurrency,
      });
      const row = await findChangeSetHead(db, key.tenant_id, key.changeset_id);
      const problems = restored.problems.join('; ');
      const { outcome, move } = restoreSettlement(this.recorder, {
        of: { key, attempt: journal.attempt },
        journalId: journal.journal_id,
        ...(row
          ? { idempotency: { key: row.idempotency_key, retentionMs: this.options.idempotencyRetentionMs } }
          : {}),
        restored,
        messages: {
          restored: `recovered: ${restored.restored} file(s) restored, ${restored.removed} removed; every file the executor wrote is byte-identical to before${conflictNote(restored.conflicts)}`,
          incomplete: `recovery could not restore the workspace: ${problems}`,
          error: `recovery could not restore the workspace: ${problems}`,
        },
        detail: { recovery: true },
      });
      const settled = await settleChangeSet(db, { ...move, key, owner: { fenceToken: held.token } });
      if (!settled)
        throw new StaleLockError(
          'another executor took this change set over before its recovery was recorded',
        );
      metrics?.recoveries.inc({ outcome });
      metrics?.outcomes.inc({ outcome });
      log[restored.identical ? 'warn' : 'error'](
        {
          action: 'recover',
          status: outcome,
          restored: restored.restored,
          removed: restored.removed,
          problems: restored.problems,
          conflicts: restored.conflicts,
        },
        `change set ${journal.changeset_id} ${outcome.replace('_', ' ')} on recovery`,
      );
    } catch (error) {
      if (error instanceof StaleLockError) {
        metrics?.staleLockRefusals.inc();
        log.warn(
          { action: 'recover', status: 'stale_lock', err: error },
          'lost the workspace during recovery; the next holder recovers the journal',
        );
        return;
      }
      throw error;
    } finally {
      held.untrack(journal.journal_id);
    }
  }
}
