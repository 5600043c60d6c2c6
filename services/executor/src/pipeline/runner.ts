/**
 * Executes one change set, safe to run any number of times for the same one (the queue delivers at least once).
 * The steps, in the order of `EXECUTION_STEPS`: idempotency → locked (workspace lock + fencing token) → recovery
 * of whatever a previous holder left in flight → validating → backing_up → applying → verifying →
 * health_checking; then one outcome: commit, roll back, refuse or replay. Each step is a file in steps/, each
 * outcome a file in outcomes/; every status change goes through the one settle transaction (settle.ts).
 */
import { findChangeSetHead, findChangeSetRow, type ChangeSetKey } from '@warden/db';
import {
  StaleLockError,
  WardenError,
  isExecutableChangeSet,
  isTerminalChangeSetStatus,
  type ChangeSetStatus,
  type ExecutionStepName,
} from '@warden/domain';
import { withSpan } from '@warden/observability';
import { WorkspaceFs } from '../workspace-fs.js';
import {
  nextAttempt,
  type Attempt,
  type ChangeSetRunnerOptions,
  type ExecuteOutcome,
  type ExecutionPoint,
  type Failure,
  type Journal,
  type Pipeline,
  type Validated,
} from './context.js';
import { commit } from './outcomes/commit.js';
import { refuse } from './outcomes/refuse.js';
import { rollBack } from './outcomes/roll-back.js';
import { StepRecorder } from './step-recorder.js';
import { apply } from './steps/apply.js';
import { backUp } from './steps/back-up.js';
import { runChecks } from './steps/checks.js';
import { claimIdempotency } from './steps/claim-idempotency.js';
import { lockWorkspace, startAttempt } from './steps/lock-workspace.js';
import { validate } from './steps/validate.js';

export class ChangeSetRunner {
  private readonly pipeline: Pipeline;

  constructor(private readonly options: ChangeSetRunnerOptions) {
    this.pipeline = { options, recorder: new StepRecorder(options.db) };
  }

  /**
   * Executes the change set if it is due; safe to call any number of times for the same one. With tracing on,
   * the execution is a span (`executor.execute`, a child of the job's) and each step a child span of it.
   */
  async execute(key: ChangeSetKey): Promise<ExecuteOutcome> {
    return withSpan(
      'executor.execute',
      { attributes: { 'warden.tenant_id': key.tenant_id, 'warden.changeset_id': key.changeset_id } },
      async (span) => {
        const outcome = await this.executeOnce(key);
        span.setAttributes({
          'warden.outcome': outcome.status,
          ...(outcome.status === 'done' ? { 'warden.changeset_status': outcome.changeset_status } : {}),
        });
        return outcome;
      },
    );
  }

  private async executeOnce(key: ChangeSetKey): Promise<ExecuteOutcome> {
    const { db, logger, metrics, recovery } = this.options;
    // Without the plan and changes (most of the row's bytes): whether it runs is decided without them, and the
    // attempt reads the whole row once it holds the workspace.
    const row = await findChangeSetHead(db, key.tenant_id, key.changeset_id);
    if (!row) return { status: 'skipped', reason: 'no such change set' };
    if (isTerminalChangeSetStatus(row.status))
      return { status: 'done', changeset_status: row.status as ChangeSetStatus };
    if (!isExecutableChangeSet(row))
      return {
        status: 'skipped',
        reason: `not executable (verdict ${row.verdict}, approval ${row.approval_state})`,
      };
    const log = logger.child({
      module: 'executor',
      tenant_id: row.tenant_id,
      changeset_id: row.changeset_id,
      workspace: row.workspace,
    });

    const claim = await step('idempotency', () => claimIdempotency(this.pipeline, row, log));
    if (claim !== 'claimed') return claim;
    const taken = await step('locked', () => lockWorkspace(this.pipeline, row, log));
    if (!('held' in taken)) return taken;
    const { held, workspace } = taken;
    metrics?.active.inc();
    try {
      await step('recovery', () => recovery.recoverWorkspace(held, workspace));
      const current = await findChangeSetRow(db, key.tenant_id, key.changeset_id);
      if (!current || isTerminalChangeSetStatus(current.status))
        return { status: 'done', changeset_status: (current?.status ?? 'failed') as ChangeSetStatus };
      // One policy for the whole attempt: a version activated meanwhile applies to the next change set.
      const policy = this.options.policy.policyFor(current.tenant_id);
      const fs = new WorkspaceFs(workspace.root, {
        maxFileBytes: policy.policy.constraints.max_file_bytes,
      });
      return await this.run({ ...nextAttempt(current), row: current, held, workspace, fs, log, policy });
    } finally {
      metrics?.active.dec();
      await held.release();
    }
  }

  private async run(at: Attempt): Promise<ExecuteOutcome> {
    if (!(await startAttempt(this.pipeline, at)))
      return { status: 'skipped', reason: 'the change set moved on before it could start' };
    at.log.info(
      { action: 'execute', status: 'started', attempt: at.attempt, fence_token: at.held.token },
      'executing change set',
    );
    await this.hook('locked', at);
    let validated: Validated;
    try {
      validated = await step('validating', () => validate(this.pipeline, at));
    } catch (error) {
      if (!(error instanceof WardenError) || error instanceof StaleLockError) throw error;
      // The version of the WriteGate policy the attempt ran under, so a re-check's refusal names what judged it.
      const detail = {
        ...(error.details.length > 0 ? { details: error.details } : {}),
        policy_version: at.policy.policy.version,
      };
      return step('failed', () =>
        refuse(this.pipeline, at.row, { code: error.code, message: error.message, detail }, at.held.token),
      );
    }
    await this.hook('validated', at);
    const journal = await step('backing_up', () => backUp(this.pipeline, at, validated));
    at.held.track(journal.id);
    try {
      return await this.writeAndCheck(at, validated, journal);
    } catch (error) {
      if (!(error instanceof StaleLockError)) throw error;
      // Another holder took the workspace (our lock expired): it recovers this journal. We must not write.
      this.options.metrics?.staleLockRefusals.inc();
      at.log.warn({ action: 'execute', status: 'stale_lock', err: error }, error.message);
      return { status: 'skipped', reason: error.message };
    } finally {
      at.held.untrack(journal.id);
    }
  }

  /** From a committed journal on: apply, check, then commit — or roll back at the first failure. */
  private async writeAndCheck(at: Attempt, validated: Validated, journal: Journal): Promise<ExecuteOutcome> {
    await this.hook('backed_up', at);
    let applyMs: number;
    try {
      applyMs = await step('applying', () => apply(this.pipeline, at, validated, journal));
    } catch (error) {
      if (error instanceof StaleLockError) throw error;
      const code = error instanceof WardenError ? error.code : 'apply_failed';
      const failure: Failure = {
        step: 'applying',
        code,
        message: `apply failed: ${(error as Error).message}`,
      };
      return step('rollback', () => rollBack(this.pipeline, at, validated, journal, failure, null));
    }
    await this.hook('applied', at);
    const { checks, failure, unrecorded } = await step('verifying', () =>
      runChecks(this.pipeline, at, validated.plan),
    );
    if (failure)
      return step('rollback', () => rollBack(this.pipeline, at, validated, journal, failure, applyMs));
    await this.hook('verified', at);
    return step('completed', () =>
      commit(this.pipeline, at, validated, journal, checks, applyMs, unrecorded),
    );
  }

  private async hook(point: ExecutionPoint, at: Attempt): Promise<void> {
    await this.options.hooks?.at?.(point, {
      ...at.key,
      workspace: at.workspace.name,
      attempt: at.attempt,
      fence_token: at.held.token,
    });
  }
}

/** One step of the pipeline as a span `executor.<step>` (a name from `EXECUTION_STEPS`); nothing when off. */
function step<T>(name: ExecutionStepName, run: () => Promise<T>): Promise<T> {
  return withSpan(`executor.${name}`, {}, run);
}
