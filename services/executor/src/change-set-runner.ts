/**
 * Executes one change set (SPEC §5), at-least-once safe: idempotency → workspace lock + fencing token →
 * recovery of anything a crashed holder left → re-check (verdict or approval, checksum, plan hash, WriteGate
 * with what is on disk, compare-and-swap) → backups and journal → fenced atomic writes → verification commands
 * → health checks → commit, or a rollback to byte-identical files. Every step is recorded and audited.
 */
import {
  claimIdempotencyKey,
  createJournal,
  findChangeSetRow,
  listChangeSetSteps,
  readStoredChangeSet,
  recordChangeSetSteps,
  setJournalPhase,
  settleIdempotencyKey,
  updateChangeSet,
  type ChangeSetKey,
  type ChangeSetRow,
  type ChangeSetStepRecord,
  type Db,
  type ExecutorIdempotencyRow,
  type NewJournalEntry,
} from '@warden/db';
import {
  ChangeSetStateError,
  ChecksumMismatchError,
  CompareAndSwapError,
  EXECUTING_CHANGESET_STATUSES,
  StaleLockError,
  ValidationError,
  WardenError,
  WriteGateDeniedError,
  checkPathSafety,
  computeChangeSetChecksum,
  computePlanHash,
  displayPath,
  evaluateWriteGate,
  expectedHashes,
  isTerminalChangeSetStatus,
  type ChangePlan,
  type ChangeSetStatus,
  type CheckOutcome,
  type ExecutionResult,
  type FileChange,
  type PathFact,
  type WriteGateResult,
} from '@warden/domain';
import type { Logger } from '@warden/observability';
import { describeCommandResult, runCommand } from './command-runner.js';
import { forEachLimit, sleep } from './concurrency.js';
import type { HealthChecker } from './health-checker.js';
import type { JournalRecovery } from './journal-recovery.js';
import type { ExecutorMetrics } from './metrics.js';
import type { LoadedWriteGatePolicy } from './policy-loader.js';
import { WorkspaceFs, type PathInspection } from './workspace-fs.js';
import type { HeldWorkspace, WorkspaceLocks } from './workspace-lock.js';
import { applyTempName, restoreWorkspace } from './workspace-restorer.js';
import type { Workspace, WorkspaceRegistry } from './workspaces.js';

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
  policy: LoadedWriteGatePolicy;
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
  /** The environment verification commands and command health checks get. */
  commandEnv: Record<string, string>;
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

interface Attempt {
  row: ChangeSetRow;
  key: ChangeSetKey;
  attempt: number;
  held: HeldWorkspace;
  workspace: Workspace;
  fs: WorkspaceFs;
  log: Logger;
}

interface Validated {
  plan: ChangePlan;
  changes: FileChange[];
  inspections: Map<string, PathInspection>;
  verdict: WriteGateResult;
}

interface Journal {
  id: string;
  entries: NewJournalEntry[];
  createdDirs: string[];
}

/** A failure after files may have been written: it ends in a rollback. */
interface Failure {
  step: string;
  code: string;
  message: string;
  checks?: CheckOutcome[];
}

const EXECUTABLE_STATUSES: readonly ChangeSetStatus[] = ['pending', ...EXECUTING_CHANGESET_STATUSES];
const depth = (path: string) => path.split('/').length;

export class ChangeSetRunner {
  constructor(private readonly options: ChangeSetRunnerOptions) {}

  /** Executes the change set if it is due; safe to call any number of times for the same one. */
  async execute(key: ChangeSetKey): Promise<ExecuteOutcome> {
    const { db, logger } = this.options;
    const row = await findChangeSetRow(db, key.tenant_id, key.changeset_id);
    if (!row) return { status: 'skipped', reason: 'no such change set' };
    if (isTerminalChangeSetStatus(row.status))
      return { status: 'done', changeset_status: row.status as ChangeSetStatus };
    const executable =
      (row.verdict === 'ALLOW' && row.approval_state === 'not_required') || row.approval_state === 'approved';
    if (!executable)
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

    // 1. Idempotency: an identical change set that completed is replayed; one that is running is waited for.
    const deadline = Date.now() + this.options.duplicateWaitMs;
    let noted = false;
    for (;;) {
      const claim = await db.transaction().execute((trx) =>
        claimIdempotencyKey(trx, {
          tenantId: row.tenant_id,
          key: row.idempotency_key,
          fingerprint: row.fingerprint,
          changesetId: row.changeset_id,
          retentionMs: this.options.idempotencyRetentionMs,
        }),
      );
      if (claim.status === 'claimed') break;
      if (claim.status === 'replay') return this.replay(row, claim.record, log);
      if (claim.status === 'mismatch') {
        await this.refuse(row, row.attempts + 1, {
          code: 'idempotency_conflict',
          message: `plan ${row.plan_id} with checksum ${row.checksum} was executed as change set ${claim.record.changeset_id} with other content (workspace or plan); refused`,
        });
        return { status: 'done', changeset_status: 'failed' };
      }
      // Visible at once: the duplicate's steps say what it waits for, however long that takes.
      if (!noted) await this.noteWaiting(row, claim.record);
      noted = true;
      if (Date.now() >= deadline) {
        log.info(
          { action: 'idempotency', status: 'deferred', running: claim.record.changeset_id },
          'an identical change set is running; deferred',
        );
        return {
          status: 'deferred',
          reason: `identical change set ${claim.record.changeset_id} is running`,
          retryInMs: 2000,
        };
      }
      await sleep(200);
    }

    // 2. The workspace, one writer at a time.
    const resolved = this.options.workspaces.resolve(row.workspace, row.tenant_id);
    if ('problem' in resolved) {
      await this.refuse(row, row.attempts + 1, { code: 'unknown_workspace', message: resolved.problem });
      return { status: 'done', changeset_status: 'failed' };
    }
    const waitStarted = performance.now();
    const held = await this.options.locks.acquire(
      row.workspace,
      { tenantId: row.tenant_id, changesetId: row.changeset_id },
      this.options.lockWaitMs,
    );
    this.options.metrics?.lockWaitSeconds.observe((performance.now() - waitStarted) / 1000);
    if (!held) {
      log.info({ action: 'lock', status: 'deferred' }, `workspace "${row.workspace}" is busy; deferred`);
      return {
        status: 'deferred',
        reason: `workspace "${row.workspace}" is busy`,
        retryInMs: 500 + Math.round(Math.random() * 1500),
      };
    }
    this.options.metrics?.active.inc();
    try {
      // 3. Whatever a crashed or stalled holder left in flight on this workspace is settled first.
      await this.options.recovery.recoverWorkspace(held, resolved.workspace);
      const current = await findChangeSetRow(db, key.tenant_id, key.changeset_id);
      if (!current || isTerminalChangeSetStatus(current.status))
        return { status: 'done', changeset_status: (current?.status ?? 'failed') as ChangeSetStatus };
      const fs = new WorkspaceFs(resolved.workspace.root, {
        maxFileBytes: this.options.policy.policy.constraints.max_file_bytes,
      });
      return await this.run({
        row: current,
        key,
        attempt: current.attempts + 1,
        held,
        workspace: resolved.workspace,
        fs,
        log,
      });
    } finally {
      this.options.metrics?.active.dec();
      await held.release();
    }
  }

  private async run(at: Attempt): Promise<ExecuteOutcome> {
    const { db } = this.options;
    const started = await db.transaction().execute(async (trx) => {
      const ok = await updateChangeSet(
        trx,
        at.key,
        {
          status: 'validating',
          attempts: at.attempt,
          started_at: new Date(),
          finished_at: null,
          fence_token: at.held.token,
          error_code: null,
          error_message: null,
        },
        { statusIn: EXECUTABLE_STATUSES },
      );
      if (ok) {
        await recordChangeSetSteps(trx, [
          this.step(
            at,
            'locked',
            'ok',
            `workspace "${at.workspace.name}" locked by ${this.options.executorId} with fencing token ${at.held.token}`,
            {
              executor_id: this.options.executorId,
              fence_token: at.held.token,
            },
            'CHANGESET_EXECUTION_STARTED',
          ),
        ]);
      }
      return ok;
    });
    if (!started) return { status: 'skipped', reason: 'the change set moved on before it could start' };
    at.log.info(
      { action: 'execute', status: 'started', attempt: at.attempt, fence_token: at.held.token },
      'executing change set',
    );
    await this.hook('locked', at);

    let validated: Validated;
    try {
      validated = await this.validate(at);
    } catch (error) {
      if (!(error instanceof WardenError) || error instanceof StaleLockError) throw error;
      await this.refuse(
        at.row,
        at.attempt,
        {
          code: error.code,
          message: error.message,
          detail: error.details.length > 0 ? { details: error.details } : {},
        },
        at.held.token,
      );
      return { status: 'done', changeset_status: 'failed' };
    }
    await this.hook('validated', at);

    const journal = await this.backUp(at, validated);
    at.held.track(journal.id);
    try {
      await this.hook('backed_up', at);
      let applyMs: number;
      try {
        applyMs = await this.apply(at, validated, journal);
      } catch (error) {
        if (error instanceof StaleLockError) throw error;
        return await this.rollBack(
          at,
          validated,
          journal,
          {
            step: 'applying',
            code: error instanceof WardenError ? error.code : 'apply_failed',
            message: `apply failed: ${(error as Error).message}`,
          },
          null,
        );
      }
      await this.hook('applied', at);

      const checks: CheckOutcome[] = [];
      const verification = await this.verify(at, validated, journal);
      checks.push(...verification);
      if (verification.some((c) => !c.ok)) {
        const failed = verification.find((c) => !c.ok)!;
        return await this.rollBack(
          at,
          validated,
          journal,
          {
            step: 'verifying',
            code: 'verification_failed',
            message: `verification "${failed.name}" failed: ${failed.detail}`,
            checks,
          },
          applyMs,
        );
      }
      const health = await this.healthCheck(at, validated);
      checks.push(...health);
      if (health.some((c) => !c.ok)) {
        const failed = health.find((c) => !c.ok)!;
        return await this.rollBack(
          at,
          validated,
          journal,
          {
            step: 'health_checking',
            code: 'health_check_failed',
            message: `health check "${failed.name}" failed: ${failed.detail}`,
            checks,
          },
          applyMs,
        );
      }
      await this.hook('verified', at);
      return await this.commit(at, validated, journal, checks, applyMs);
    } catch (error) {
      if (error instanceof StaleLockError) {
        // Another holder took the workspace (our lock expired): it recovers this journal. We must not write.
        this.options.metrics?.staleLockRefusals.inc();
        at.log.warn({ action: 'execute', status: 'stale_lock', err: error }, error.message);
        return { status: 'skipped', reason: error.message };
      }
      throw error;
    } finally {
      at.held.untrack(journal.id);
    }
  }

  /** Step 3: everything that must hold before a byte is written. Throws a WardenError to refuse. */
  private async validate(at: Attempt): Promise<Validated> {
    const { row } = at;
    if (row.verdict === 'DENY')
      throw new WriteGateDeniedError('the WriteGate denied this change set at submission');
    if (row.verdict === 'NEED_APPROVAL' && row.approval_state !== 'approved')
      throw new ChangeSetStateError('the change set needs approval and is not approved');
    let stored: ReturnType<typeof readStoredChangeSet>;
    try {
      stored = readStoredChangeSet(row);
    } catch (error) {
      throw new ValidationError(
        `the stored change set is not readable: ${(error as Error).message.split('\n')[0]}`,
      );
    }
    const checksum = computeChangeSetChecksum(stored.rawChanges as FileChange[]);
    if (checksum !== row.checksum) {
      throw new ChecksumMismatchError(
        `checksum mismatch: change set tampered (stored checksum ${row.checksum}, the changes hash to ${checksum}); nothing was written`,
      );
    }
    const planHash = computePlanHash(stored.plan);
    if (planHash !== row.plan_hash)
      throw new ChecksumMismatchError(
        `plan hash mismatch: the plan was changed after submission (stored ${row.plan_hash}, now ${planHash}); nothing was written`,
      );
    if (
      row.approval_state === 'approved' &&
      (row.approval_checksum !== checksum || row.approval_plan_hash !== planHash)
    ) {
      throw new ChecksumMismatchError(
        `checksum mismatch: change set tampered after approval (approved checksum ${row.approval_checksum}, now ${checksum}); nothing was written`,
      );
    }

    // What is on disk now. Paths that fail the lexical checks are never touched, not even read.
    const inspections = new Map<string, PathInspection>();
    const pathFacts = new Map<string, PathFact[]>();
    const session = at.fs.session();
    try {
      await forEachLimit(stored.changes, this.options.writeConcurrency, async (change) => {
        if (checkPathSafety(change.path).length > 0 || inspections.has(change.path)) return;
        const inspection = await session.inspect(change.path);
        inspections.set(change.path, inspection);
        if (inspection.facts.length > 0) pathFacts.set(change.path, inspection.facts);
      });
    } finally {
      await session.close();
    }
    const verdict = evaluateWriteGate({
      plan: stored.plan,
      changeset: { changes: stored.changes },
      policy: this.options.policy.policy,
      policyHash: this.options.policy.hash,
      pathFacts,
    });
    const blocking = verdict.reasons.filter((r) => r.outcome === 'deny' || r.outcome === 'need_approval');
    const details = blocking.map((r) => ({ path: r.step, message: `${r.code}: ${r.message}` }));
    if (verdict.verdict === 'DENY')
      throw new WriteGateDeniedError(
        `the WriteGate re-check denied the change set: ${blocking
          .filter((r) => r.outcome === 'deny')
          .map((r) => r.message)
          .join('; ')}`,
        details,
      );
    if (verdict.verdict === 'NEED_APPROVAL' && row.approval_state !== 'approved') {
      throw new WriteGateDeniedError(
        `the executor's WriteGate policy requires approval: ${blocking.map((r) => r.message).join('; ')}`,
        details,
      );
    }

    // Step 4, compare-and-swap: every update and delete must find the file it was written against.
    const mismatches: Array<{ path: string; message: string }> = [];
    for (const change of stored.changes) {
      const state = inspections.get(change.path)!.state;
      const expected = expectedHashes(change).oldHash;
      if (change.operation === 'create' && state.exists)
        mismatches.push({ path: change.path, message: 'exists already; a create never overwrites' });
      else if (change.operation !== 'create' && !state.exists)
        mismatches.push({ path: change.path, message: 'does not exist' });
      else if (change.operation !== 'create' && state.exists && state.hash !== expected)
        mismatches.push({
          path: change.path,
          message: `changed since the change set was made (now ${state.hash}, expected ${expected})`,
        });
    }
    if (mismatches.length > 0) {
      throw new CompareAndSwapError(
        `compare-and-swap failed: ${mismatches
          .slice(0, 10)
          .map((m) => `${displayPath(m.path)} ${m.message}`)
          .join(
            '; ',
          )}${mismatches.length > 10 ? ` and ${mismatches.length - 10} more` : ''}; nothing was written`,
        mismatches.map((m) => ({ path: m.path, message: m.message })),
      );
    }
    await this.transition(at, 'backing_up', [
      this.step(
        at,
        'validating',
        'ok',
        `checksum, plan hash, approval, WriteGate (${verdict.verdict}, risk ${verdict.risk_effective}) and compare-and-swap of ${stored.changes.length} file(s) hold`,
        {
          checksum,
          plan_hash: planHash,
          verdict: verdict.verdict,
          risk_effective: verdict.risk_effective,
          policy_hash: verdict.policy_hash,
        },
        'CHANGESET_VALIDATED',
      ),
    ]);
    return { plan: stored.plan, changes: stored.changes, inspections, verdict };
  }

  /** Step 5a: the journal with a backup of every file the change set replaces or deletes, committed before any write. */
  private async backUp(at: Attempt, validated: Validated): Promise<Journal> {
    const entries: NewJournalEntry[] = validated.changes.map((change, seq) => {
      const state = validated.inspections.get(change.path)!.state;
      return {
        seq,
        path: change.path,
        operation: change.operation,
        pre_exists: state.exists,
        pre_hash: state.exists ? state.hash : null,
        pre_mode: state.exists ? state.mode : null,
        backup: state.exists ? state.content : null,
        new_hash: expectedHashes(change).newHash ?? null,
      };
    });
    const createdDirs = [
      ...new Set(validated.changes.flatMap((c) => validated.inspections.get(c.path)!.missingDirs)),
    ].sort((a, b) => depth(a) - depth(b) || a.localeCompare(b));
    const bytes = entries.reduce((sum, e) => sum + (e.backup?.length ?? 0), 0);
    const id = await this.options.db.transaction().execute(async (trx) => {
      const journalId = await createJournal(trx, {
        tenant_id: at.key.tenant_id,
        changeset_id: at.key.changeset_id,
        attempt: at.attempt,
        workspace: at.workspace.name,
        fence_token: at.held.token,
        executor_id: this.options.executorId,
        created_dirs: createdDirs,
        lease_expires_at: at.held.leaseUntil(),
        entries,
      });
      await recordChangeSetSteps(trx, [
        this.step(
          at,
          'backing_up',
          'ok',
          `journal written; ${entries.filter((e) => e.backup).length} file(s) backed up (${bytes} bytes)`,
          {
            journal_id: journalId,
            files: entries.length,
            backed_up: entries.filter((e) => e.backup).length,
            bytes,
            created_dirs: createdDirs.length,
          },
          'CHANGESET_BACKED_UP',
        ),
      ]);
      return journalId;
    });
    return { id, entries, createdDirs };
  }

  /** Step 5b: every write checks the fencing token first, in one transaction that holds it for the whole apply. */
  private async apply(at: Attempt, validated: Validated, journal: Journal): Promise<number> {
    const { db } = this.options;
    // A lock we could not extend may be someone else's by now: start no write under it (the fence would refuse them).
    if (at.held.lost) throw new StaleLockError(at.held.lost);
    await db.transaction().execute(async (trx) => {
      const owned = await setJournalPhase(trx, journal.id, 'applying', {
        fenceToken: at.held.token,
        leaseExpiresAt: at.held.leaseUntil(),
      });
      const moved =
        owned && (await updateChangeSet(trx, at.key, { status: 'applying' }, { fenceToken: at.held.token }));
      if (!moved)
        throw new StaleLockError('another executor took this change set over before it was applied');
    });
    const started = performance.now();
    const session = at.fs.session();
    const counts = { created: 0, updated: 0, deleted: 0 };
    try {
      await db.transaction().execute(async (trx) => {
        for (const dir of journal.createdDirs) {
          await at.held.assertFence(trx);
          await session.ensureDir(dir);
        }
        await forEachLimit(journal.entries, this.options.writeConcurrency, async (entry) => {
          const change = validated.changes[entry.seq]!;
          if (this.options.writeDelayMs) await sleep(this.options.writeDelayMs);
          await at.held.assertFence(trx);
          if (change.operation !== 'create') {
            // Compare-and-swap once more at the moment of writing: the file must still be the one backed up.
            const now = await session.readState(change.path);
            if (!now.exists || now.hash !== entry.pre_hash)
              throw new CompareAndSwapError(`${displayPath(change.path)} changed during the apply`);
          }
          if (change.operation === 'delete') {
            await session.removeFile(change.path);
            counts.deleted += 1;
          } else {
            await session.writeFile(change.path, Buffer.from(change.new_content ?? '', 'utf8'), {
              mode: entry.pre_mode ?? 0o644,
              tempName: applyTempName(journal.id, entry.seq),
              exclusive: change.operation === 'create',
            });
            counts[change.operation === 'create' ? 'created' : 'updated'] += 1;
          }
        });
        await session.syncDirectories();
        await setJournalPhase(trx, journal.id, 'applied', { fenceToken: at.held.token });
      });
    } finally {
      await session.close();
    }
    const applyMs = Math.round(performance.now() - started);
    this.options.metrics?.applySeconds.observe(applyMs / 1000);
    await this.transition(
      at,
      'verifying',
      [
        this.step(
          at,
          'applying',
          'ok',
          `${counts.created} created, ${counts.updated} updated, ${counts.deleted} deleted in ${applyMs} ms`,
          { ...counts, apply_ms: applyMs },
          'CHANGESET_APPLIED',
          applyMs,
        ),
      ],
      journal.id,
      'verifying',
    );
    return applyMs;
  }

  /** Step 6a: the plan's verification commands, in order, stopping at the first failure. */
  private async verify(at: Attempt, validated: Validated, _journal: Journal): Promise<CheckOutcome[]> {
    const commands = validated.plan.verification_plan?.commands ?? [];
    const outcomes: CheckOutcome[] = [];
    for (const command of commands) {
      const timeoutMs = Math.min(command.timeout_ms, this.options.maxCommandTimeoutMs);
      const result = await runCommand(command.command, command.args, {
        cwd: at.workspace.root,
        env: this.commandEnv(at),
        timeoutMs,
        outputLimitBytes: this.options.outputLimitBytes,
      });
      outcomes.push({
        name: command.name ?? [command.command, ...command.args].join(' ').slice(0, 200),
        kind: 'verification',
        ok: result.ok,
        duration_ms: result.durationMs,
        detail: describeCommandResult(result, timeoutMs),
        output: result.output,
      });
      if (!result.ok) break;
    }
    const ok = outcomes.every((o) => o.ok);
    const message =
      commands.length === 0
        ? 'no verification commands in the plan'
        : ok
          ? `${outcomes.length} verification command(s) passed`
          : `verification failed: ${outcomes.at(-1)!.name} (${outcomes.at(-1)!.detail})`;
    const step = this.step(
      at,
      'verifying',
      commands.length === 0 ? 'skipped' : ok ? 'ok' : 'failed',
      message,
      { checks: outcomes.map(withoutOutput) },
      ok ? 'CHANGESET_VERIFIED' : 'CHANGESET_VERIFICATION_FAILED',
      sumDurations(outcomes),
    );
    if (ok) await this.transition(at, 'health_checking', [step]);
    else await this.record([step]);
    return outcomes;
  }

  /** Step 6b: health checks (commands, or HTTP through a circuit breaker). */
  private async healthCheck(at: Attempt, validated: Validated): Promise<CheckOutcome[]> {
    const checks = validated.plan.health_checks;
    const outcomes: CheckOutcome[] = [];
    for (const check of checks) {
      const outcome = await this.options.healthChecker.run(check, {
        cwd: at.workspace.root,
        env: this.commandEnv(at),
      });
      outcomes.push(outcome);
      if (!outcome.ok) break;
    }
    const ok = outcomes.every((o) => o.ok);
    const message =
      checks.length === 0
        ? 'no health checks in the plan'
        : ok
          ? `${outcomes.length} health check(s) passed`
          : `health check failed: ${outcomes.at(-1)!.name} (${outcomes.at(-1)!.detail})`;
    await this.record([
      this.step(
        at,
        'health_checking',
        checks.length === 0 ? 'skipped' : ok ? 'ok' : 'failed',
        message,
        { checks: outcomes.map(withoutOutput) },
        ok ? 'CHANGESET_HEALTH_CHECKED' : 'CHANGESET_HEALTH_CHECK_FAILED',
        sumDurations(outcomes),
      ),
    ]);
    return outcomes;
  }

  /** Step 7, success: one transaction makes the change set completed, the journal committed and the result replayable. */
  private async commit(
    at: Attempt,
    validated: Validated,
    journal: Journal,
    checks: CheckOutcome[],
    applyMs: number,
  ): Promise<ExecuteOutcome> {
    const result: ExecutionResult = {
      outcome: 'completed',
      files: countFiles(validated.changes),
      checks: checks.map(withoutOutput),
      apply_ms: applyMs,
      rollback_ms: null,
      replayed_from: null,
    };
    const committed = await this.options.db.transaction().execute(async (trx) => {
      const owned = await updateChangeSet(
        trx,
        at.key,
        { status: 'completed', finished_at: new Date(), result },
        { fenceToken: at.held.token },
      );
      if (!owned) return false;
      await setJournalPhase(trx, journal.id, 'committed', { fenceToken: at.held.token });
      await settleIdempotencyKey(trx, {
        tenantId: at.key.tenant_id,
        key: at.row.idempotency_key,
        changesetId: at.key.changeset_id,
        state: 'completed',
        result: result as unknown as Record<string, unknown>,
        retentionMs: this.options.idempotencyRetentionMs,
      });
      await recordChangeSetSteps(trx, [
        this.step(
          at,
          'completed',
          'ok',
          `completed: ${result.files.created} created, ${result.files.updated} updated, ${result.files.deleted} deleted; verified`,
          { ...result },
          'CHANGESET_COMPLETED',
        ),
      ]);
      return true;
    });
    if (!committed)
      throw new StaleLockError('another executor took this change set over before it could commit');
    this.options.metrics?.outcomes.inc({ outcome: 'completed' });
    at.log.info(
      { action: 'execute', status: 'completed', apply_ms: applyMs, files: result.files },
      'change set completed',
    );
    return { status: 'done', changeset_status: 'completed' };
  }

  /** Step 7, failure: `failed`, then restore every file from the journal and check it is byte-identical → `rolled_back`. */
  private async rollBack(
    at: Attempt,
    validated: Validated,
    journal: Journal,
    failure: Failure,
    applyMs: number | null,
  ): Promise<ExecuteOutcome> {
    const { db } = this.options;
    const owned = await db.transaction().execute(async (trx) => {
      const ok = await updateChangeSet(
        trx,
        at.key,
        { status: 'failed', error_code: failure.code, error_message: failure.message },
        { fenceToken: at.held.token },
      );
      if (!ok) return false;
      await setJournalPhase(trx, journal.id, 'rolling_back', { fenceToken: at.held.token });
      await recordChangeSetSteps(trx, [
        // Verification and health checks record their own failed step; an apply that broke off does not.
        ...(failure.step === 'applying'
          ? [
              this.step(
                at,
                'applying',
                'failed',
                failure.message,
                { code: failure.code },
                'CHANGESET_APPLY_FAILED',
              ),
            ]
          : []),
        this.step(
          at,
          'failed',
          'failed',
          `${failure.message}; rolling back`,
          { failed_step: failure.step, code: failure.code },
          'CHANGESET_FAILED',
        ),
      ]);
      return true;
    });
    if (!owned)
      throw new StaleLockError('another executor took this change set over before it could roll back');
    at.log.warn(
      { action: 'rollback', status: 'started', failed_step: failure.step, error_code: failure.code },
      failure.message,
    );
    const entries = journal.entries.map((e) => ({ ...e, journal_id: journal.id }));
    const restored = await restoreWorkspace({
      db,
      root: at.workspace.root,
      held: at.held,
      journalId: journal.id,
      entries,
      createdDirs: journal.createdDirs,
      concurrency: this.options.writeConcurrency,
    });
    this.options.metrics?.rollbackSeconds.observe(restored.durationMs / 1000);
    const outcome = restored.identical ? 'rolled_back' : 'rollback_failed';
    const result: ExecutionResult = {
      outcome,
      files: countFiles(validated.changes),
      checks: (failure.checks ?? []).map(withoutOutput),
      apply_ms: applyMs,
      rollback_ms: restored.durationMs,
      replayed_from: null,
    };
    await db.transaction().execute(async (trx) => {
      await updateChangeSet(
        trx,
        at.key,
        {
          status: outcome,
          finished_at: new Date(),
          result,
          ...(restored.identical
            ? {}
            : {
                error_code: 'rollback_failed',
                error_message: `${failure.message}; the rollback could not restore: ${restored.problems.join('; ')}`,
              }),
        },
        { fenceToken: at.held.token },
      );
      await setJournalPhase(trx, journal.id, outcome, { fenceToken: at.held.token });
      await settleIdempotencyKey(trx, {
        tenantId: at.key.tenant_id,
        key: at.row.idempotency_key,
        changesetId: at.key.changeset_id,
        state: 'failed',
        result: result as unknown as Record<string, unknown>,
        retentionMs: this.options.idempotencyRetentionMs,
      });
      await recordChangeSetSteps(trx, [
        this.step(
          at,
          'rollback',
          restored.identical ? 'ok' : 'failed',
          restored.identical
            ? `rolled back in ${restored.durationMs} ms: ${restored.restored} file(s) restored, ${restored.removed} removed; every file is byte-identical to before`
            : `rollback incomplete: ${restored.problems.join('; ')}`,
          {
            restored: restored.restored,
            removed: restored.removed,
            rollback_ms: restored.durationMs,
            problems: restored.problems,
          },
          restored.identical ? 'CHANGESET_ROLLED_BACK' : 'CHANGESET_ROLLBACK_FAILED',
          restored.durationMs,
          restored.identical ? 'warn' : 'error',
        ),
      ]);
    });
    this.options.metrics?.outcomes.inc({ outcome });
    at.log[restored.identical ? 'warn' : 'error'](
      { action: 'rollback', status: outcome, rollback_ms: restored.durationMs, problems: restored.problems },
      `change set ${outcome.replace('_', ' ')}`,
    );
    return { status: 'done', changeset_status: outcome };
  }

  /** A refusal before anything was written: `failed`, with the reason, audited; the idempotency key is released. */
  private async refuse(
    row: ChangeSetRow,
    attempt: number,
    refusal: { code: string; message: string; detail?: Record<string, unknown> },
    fenceToken?: string,
  ): Promise<void> {
    const key = { tenant_id: row.tenant_id, changeset_id: row.changeset_id };
    const result: ExecutionResult = {
      outcome: 'failed',
      files: { created: 0, updated: 0, deleted: 0 },
      checks: [],
      apply_ms: null,
      rollback_ms: null,
      replayed_from: null,
    };
    await this.options.db.transaction().execute(async (trx) => {
      const ok = await updateChangeSet(
        trx,
        key,
        {
          status: 'failed',
          attempts: attempt,
          finished_at: new Date(),
          error_code: refusal.code,
          error_message: refusal.message,
          result,
        },
        fenceToken === undefined ? { statusIn: EXECUTABLE_STATUSES } : { fenceToken },
      );
      if (!ok) return;
      if (refusal.code !== 'idempotency_conflict') {
        await settleIdempotencyKey(trx, {
          tenantId: row.tenant_id,
          key: row.idempotency_key,
          changesetId: row.changeset_id,
          state: 'failed',
          result: result as unknown as Record<string, unknown>,
          retentionMs: this.options.idempotencyRetentionMs,
        });
      }
      await recordChangeSetSteps(trx, [
        {
          ...key,
          attempt,
          step: 'validating',
          status: 'failed',
          message: `refused: ${refusal.message}`,
          detail: { code: refusal.code, ...refusal.detail },
          audit: { event_type: 'CHANGESET_REFUSED', level: 'warn' },
        },
      ]);
    });
    this.options.metrics?.outcomes.inc({ outcome: 'refused' });
    this.options.logger.warn(
      {
        module: 'executor',
        action: 'validate',
        status: 'refused',
        tenant_id: row.tenant_id,
        changeset_id: row.changeset_id,
        error_code: refusal.code,
      },
      refusal.message,
    );
  }

  /** A duplicate of a completed change set: completed with the stored result, nothing written. */
  private async replay(
    row: ChangeSetRow,
    record: ExecutorIdempotencyRow,
    log: Logger,
  ): Promise<ExecuteOutcome> {
    const stored = (record.result ?? {}) as Partial<ExecutionResult>;
    const result: ExecutionResult = {
      outcome: 'completed',
      files: stored.files ?? { created: 0, updated: 0, deleted: 0 },
      checks: stored.checks ?? [],
      apply_ms: stored.apply_ms ?? null,
      rollback_ms: null,
      replayed_from: record.changeset_id,
    };
    const key = { tenant_id: row.tenant_id, changeset_id: row.changeset_id };
    await this.options.db.transaction().execute(async (trx) => {
      const ok = await updateChangeSet(
        trx,
        key,
        {
          status: 'completed',
          attempts: row.attempts + 1,
          started_at: new Date(),
          finished_at: new Date(),
          result,
        },
        { statusIn: EXECUTABLE_STATUSES },
      );
      if (!ok) return;
      await recordChangeSetSteps(trx, [
        {
          ...key,
          attempt: row.attempts + 1,
          step: 'idempotency',
          status: 'ok',
          message: `identical to change set ${record.changeset_id}, which completed: its result is replayed and nothing is written`,
          detail: { idempotency_key: row.idempotency_key, replayed_from: record.changeset_id },
          audit: { event_type: 'CHANGESET_REPLAYED', level: 'info' },
        },
      ]);
    });
    this.options.metrics?.outcomes.inc({ outcome: 'replayed' });
    log.info(
      { action: 'idempotency', status: 'replayed', replayed_from: record.changeset_id },
      'duplicate change set: stored result replayed',
    );
    return { status: 'done', changeset_status: 'completed', replayed_from: record.changeset_id };
  }

  /** Records, once per attempt, that the change set waits for an identical one. */
  private async noteWaiting(row: ChangeSetRow, record: ExecutorIdempotencyRow): Promise<void> {
    const steps = await listChangeSetSteps(this.options.db, row);
    const attempt = row.attempts + 1;
    if (steps.some((s) => s.step === 'idempotency' && s.status === 'waiting' && s.attempt === attempt))
      return;
    await this.record([
      {
        tenant_id: row.tenant_id,
        changeset_id: row.changeset_id,
        attempt,
        step: 'idempotency',
        status: 'waiting',
        message: `identical change set ${record.changeset_id} is running; this one waits for its result`,
        detail: { idempotency_key: row.idempotency_key, running: record.changeset_id },
        audit: { event_type: 'CHANGESET_DUPLICATE_WAITING', level: 'info' },
      },
    ]);
  }

  private async transition(
    at: Attempt,
    status: ChangeSetStatus,
    steps: ChangeSetStepRecord[],
    journalId?: string,
    phase?: 'verifying',
  ): Promise<void> {
    const owned = await this.options.db.transaction().execute(async (trx) => {
      const ok = await updateChangeSet(trx, at.key, { status }, { fenceToken: at.held.token });
      if (!ok) return false;
      if (journalId && phase) await setJournalPhase(trx, journalId, phase, { fenceToken: at.held.token });
      await recordChangeSetSteps(trx, steps);
      return true;
    });
    if (!owned) throw new StaleLockError(`another executor took change set ${at.key.changeset_id} over`);
  }

  private async record(steps: ChangeSetStepRecord[]): Promise<void> {
    await this.options.db.transaction().execute((trx) => recordChangeSetSteps(trx, steps));
  }

  private step(
    at: Attempt,
    step: string,
    status: ChangeSetStepRecord['status'],
    message: string,
    detail: Record<string, unknown>,
    eventType: string,
    durationMs: number | null = null,
    level: 'info' | 'warn' | 'error' = status === 'failed' ? 'warn' : 'info',
  ): ChangeSetStepRecord {
    return {
      ...at.key,
      attempt: at.attempt,
      step,
      status,
      message,
      detail,
      duration_ms: durationMs,
      audit: { event_type: eventType, level },
    };
  }

  private commandEnv(at: Attempt): Record<string, string> {
    return {
      ...this.options.commandEnv,
      WARDEN_CHANGESET_ID: at.key.changeset_id,
      WARDEN_WORKSPACE: at.workspace.name,
      WARDEN_WORKSPACE_ROOT: at.workspace.root,
    };
  }

  private async hook(point: ExecutionPoint, at: Attempt): Promise<void> {
    await this.options.hooks?.at?.(point, {
      tenant_id: at.key.tenant_id,
      changeset_id: at.key.changeset_id,
      workspace: at.workspace.name,
      attempt: at.attempt,
      fence_token: at.held.token,
    });
  }
}

function withoutOutput(check: CheckOutcome): CheckOutcome {
  // Outputs stay in the step detail of the failing check only; results stay small.
  const { output: _output, ...rest } = check;
  return check.ok ? rest : { ...rest, ...(check.output ? { output: check.output.slice(-2000) } : {}) };
}

function sumDurations(outcomes: readonly CheckOutcome[]): number {
  return outcomes.reduce((sum, o) => sum + o.duration_ms, 0);
}

function countFiles(changes: readonly FileChange[]): ExecutionResult['files'] {
  return {
    created: changes.filter((c) => c.operation === 'create').length,
    updated: changes.filter((c) => c.operation === 'update').length,
    deleted: changes.filter((c) => c.operation === 'delete').length,
  };
}
