/**
 * Change sets as Postgres keeps them: submission with its WriteGate verdict, approval and rejection,
 * the steps each went through (every one audited in the tenant's hash chain), and the views the API serves.
 */
import { sql, type Insertable, type Updateable } from 'kysely';
import {
  ChangePlanSchema,
  DEFAULT_EXPIRY_MINUTES,
  EXPIRY_ACTOR,
  FileChangeSchema,
  isPastDeadline,
  countChangedLines,
  encodeCursor,
  expectedHashes,
  type AuditLevel,
  type ChangePlan,
  type ChangeSetStatus,
  type ChangeSetStepName,
  type ChangeSetStepStatus,
  type ChangeSetView,
  type ExecutionResult,
  type FileChange,
  type WriteGateResult,
} from '@warden/domain';
import type { ChangeSetRow, ChangeSetStepRow, ChangeSetsTable } from './tables.js';
import type { QueryExecutor } from '../database.js';
import { appendAudits } from '../core/audits.js';
import { recordNotifications } from '../notifications/outbox.js';

export interface ChangeSetKey {
  tenant_id: string;
  changeset_id: string;
}

/**
 * The `task_id` of a change set's audit rows. Prefixed so a change set never shares a trail with a task that
 * happens to have the same id; `GET /v1/changesets/:id/audits` reads it.
 */
export function changeSetAuditTaskId(changesetId: string): string {
  return `changeset:${changesetId}`;
}

export interface ChangeSetStepRecord extends ChangeSetKey {
  attempt: number;
  /** One of the steps every writer names its steps from (`CHANGESET_STEPS`, in order). */
  step: ChangeSetStepName;
  status: ChangeSetStepStatus;
  message: string;
  detail?: Record<string, unknown>;
  duration_ms?: number | null;
  /** The audit row that goes with the step, in the same transaction. */
  audit: { event_type: string; level: AuditLevel };
}

/**
 * Records steps and their audit rows (joining the tenant's hash chain) in the caller's transaction, so a
 * change set's visible history and its audit trail can never disagree.
 */
export async function recordChangeSetSteps(
  trx: QueryExecutor,
  steps: readonly ChangeSetStepRecord[],
): Promise<void> {
  if (steps.length === 0) return;
  await trx
    .insertInto('changeset_steps')
    .values(
      steps.map((s) => ({
        tenant_id: s.tenant_id,
        changeset_id: s.changeset_id,
        attempt: s.attempt,
        step: s.step,
        status: s.status,
        message: s.message,
        detail: JSON.stringify(s.detail ?? {}),
        duration_ms: s.duration_ms ?? null,
      })),
    )
    .execute();
  await appendAudits(
    trx,
    steps.map((s) => ({
      tenant_id: s.tenant_id,
      task_id: changeSetAuditTaskId(s.changeset_id),
      event_type: s.audit.event_type,
      level: s.audit.level,
      decision_id: null,
      event_id: null,
      source_event_ts: null,
      payload: {
        changeset_id: s.changeset_id,
        step: s.step,
        status: s.status,
        attempt: s.attempt,
        message: s.message,
        ...(s.detail ?? {}),
      },
    })),
  );
}

/**
 * A submitted change set. `plan_json` and `changes_json` are the canonical JSON of the parsed plan and of the
 * changes, exactly as the checksum and the plan hash cover them.
 */
export type NewChangeSet = Pick<
  Insertable<ChangeSetsTable>,
  | 'tenant_id'
  | 'changeset_id'
  | 'plan_id'
  | 'workspace'
  | 'generated_by'
  | 'checksum'
  | 'plan_hash'
  | 'idempotency_key'
  | 'fingerprint'
  | 'plan_json'
  | 'changes_json'
  | 'submitted_by'
> & {
  verdict: WriteGateResult;
  status: ChangeSetStatus;
  approval_state: 'not_required' | 'pending';
  /** Set `queued_at` now: the change set goes to the executor after commit. */
  queued: boolean;
  /**
   * When a pending approval is denied (see `approvalDeadline`); ignored when no approval is asked for.
   * @defaultValue 24 hours from now for a pending approval — never without a deadline
   */
  approval_expires_at?: Date;
};

export type InsertChangeSetResult =
  { status: 'created'; row: ChangeSetRow } | { status: 'exists'; row: ChangeSetRow };

/** Inserts a change set; when the tenant already has one with this id, returns that one untouched. */
export async function insertChangeSet(
  trx: QueryExecutor,
  input: NewChangeSet,
): Promise<InsertChangeSetResult> {
  const inserted = await trx
    .insertInto('changesets')
    .values({
      tenant_id: input.tenant_id,
      changeset_id: input.changeset_id,
      plan_id: input.plan_id,
      workspace: input.workspace,
      generated_by: input.generated_by,
      checksum: input.checksum,
      plan_hash: input.plan_hash,
      idempotency_key: input.idempotency_key,
      fingerprint: input.fingerprint,
      plan_json: input.plan_json,
      changes_json: input.changes_json,
      verdict: input.verdict.verdict,
      risk_effective: input.verdict.risk_effective,
      verdict_detail: JSON.stringify(input.verdict),
      policy_hash: input.verdict.policy_hash,
      status: input.status,
      approval_state: input.approval_state,
      approval_expires_at:
        input.approval_state === 'pending'
          ? (input.approval_expires_at ?? new Date(Date.now() + DEFAULT_EXPIRY_MINUTES * 60_000))
          : null,
      submitted_by: input.submitted_by,
      queued_at: input.queued ? new Date() : null,
    })
    .onConflict((oc) => oc.columns(['tenant_id', 'changeset_id']).doNothing())
    .returningAll()
    .executeTakeFirst();
  if (inserted) {
    if (inserted.approval_state === 'pending')
      await notifyApproval(trx, inserted, 'changeset.awaiting_approval');
    return { status: 'created', row: inserted };
  }
  const existing = await findChangeSetRow(trx, input.tenant_id, input.changeset_id);
  if (!existing) throw new Error(`change set ${input.changeset_id} vanished while being inserted`);
  return { status: 'exists', row: existing };
}

export async function findChangeSetRow(
  db: QueryExecutor,
  tenantId: string,
  changesetId: string,
  options: { forUpdate?: boolean } = {},
): Promise<ChangeSetRow | undefined> {
  let query = db
    .selectFrom('changesets')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('changeset_id', '=', changesetId);
  if (options.forUpdate) query = query.forUpdate();
  return query.executeTakeFirst();
}

/**
 * A change set's row without its plan and changes, which are most of its bytes (every file's new content): enough
 * to decide whether, where and under which idempotency key it runs, for readers that never parse the body.
 */
export type ChangeSetHeadRow = Omit<ChangeSetRow, 'plan_json' | 'changes_json'>;

// Every column but the two bodies; one added to the table and not here fails to compile (findChangeSetHead's type).
const CHANGE_SET_HEAD_COLUMNS = [
  'tenant_id',
  'changeset_id',
  'plan_id',
  'workspace',
  'generated_by',
  'checksum',
  'plan_hash',
  'idempotency_key',
  'fingerprint',
  'verdict',
  'risk_effective',
  'verdict_detail',
  'policy_hash',
  'status',
  'approval_state',
  'approval_by',
  'approval_at',
  'approval_checksum',
  'approval_plan_hash',
  'approval_note',
  'approval_expires_at',
  'approval_expiry_warned_at',
  'submitted_by',
  'submitted_at',
  'updated_at',
  'queued_at',
  'attempts',
  'started_at',
  'finished_at',
  'error_code',
  'error_message',
  'result',
  'fence_token',
] as const satisfies ReadonlyArray<keyof ChangeSetHeadRow>;

/** {@link findChangeSetRow} without the plan and the changes. */
export async function findChangeSetHead(
  db: QueryExecutor,
  tenantId: string,
  changesetId: string,
): Promise<ChangeSetHeadRow | undefined> {
  return db
    .selectFrom('changesets')
    .select(CHANGE_SET_HEAD_COLUMNS)
    .where('tenant_id', '=', tenantId)
    .where('changeset_id', '=', changesetId)
    .executeTakeFirst();
}

/** Serializes submissions under one idempotency key until the transaction ends (a transaction-scoped advisory lock). */
export async function lockIdempotencyKey(
  trx: QueryExecutor,
  tenantId: string,
  idempotencyKey: string,
): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`changeset-key|${tenantId}|${idempotencyKey}`}, 0))`.execute(
    trx,
  );
}

/** Change sets of the tenant under one idempotency key, oldest first. */
export async function findChangeSetsByIdempotencyKey(
  db: QueryExecutor,
  tenantId: string,
  idempotencyKey: string,
): Promise<ChangeSetRow[]> {
  return db
    .selectFrom('changesets')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('idempotency_key', '=', idempotencyKey)
    .orderBy('submitted_at')
    .orderBy('changeset_id')
    .execute();
}

export interface ChangeSetPatch {
  status?: ChangeSetStatus;
  attempts?: number;
  started_at?: Date | null;
  finished_at?: Date | null;
  error_code?: string | null;
  error_message?: string | null;
  result?: ExecutionResult | null;
  fence_token?: string | null;
  queued_at?: Date | null;
}

/**
 * Updates a change set. With `guard.fenceToken`, only while the change set is still owned by that execution
 * attempt; with `guard.statusIn`, only from one of those statuses. Returns false when the guard did not hold
 * (another attempt took over, or the status moved on).
 */
export async function updateChangeSet(
  db: QueryExecutor,
  key: ChangeSetKey,
  patch: ChangeSetPatch,
  guard: { fenceToken?: string; statusIn?: readonly ChangeSetStatus[] } = {},
): Promise<boolean> {
  const { result, ...rest } = patch;
  let query = db
    .updateTable('changesets')
    .set({
      ...rest,
      ...(result === undefined ? {} : { result: result === null ? null : JSON.stringify(result) }),
      updated_at: new Date(),
    })
    .where('tenant_id', '=', key.tenant_id)
    .where('changeset_id', '=', key.changeset_id);
  if (guard.fenceToken !== undefined) query = query.where('fence_token', '=', guard.fenceToken);
  if (guard.statusIn !== undefined) query = query.where('status', 'in', [...guard.statusIn]);
  const outcome = await query.executeTakeFirst();
  return outcome.numUpdatedRows > 0n;
}

/** The plan and the changes of a stored change set, parsed from exactly the text the hashes cover. */
export function readStoredChangeSet(row: Pick<ChangeSetRow, 'plan_json' | 'changes_json'>): {
  plan: ChangePlan;
  changes: FileChange[];
  /** The changes as stored, before schema defaults: what the checksum covers. */
  rawChanges: unknown[];
} {
  const parsedChanges: unknown = JSON.parse(row.changes_json);
  const plan = ChangePlanSchema.parse(JSON.parse(row.plan_json));
  const changes = FileChangeSchema.array().parse(parsedChanges);
  // The schema accepted it, so it is an array: kept as parsed, before the schema's defaults.
  const rawChanges: unknown[] = Array.isArray(parsedChanges) ? parsedChanges : [];
  return { plan, changes, rawChanges };
}

export async function listChangeSetSteps(db: QueryExecutor, key: ChangeSetKey): Promise<ChangeSetStepRow[]> {
  return db
    .selectFrom('changeset_steps')
    .selectAll()
    .where('tenant_id', '=', key.tenant_id)
    .where('changeset_id', '=', key.changeset_id)
    .orderBy('step_id')
    .execute();
}

/** The change set as `GET /v1/changesets/:id` shows it; undefined for an unknown or foreign id. */
export async function findChangeSetView(
  db: QueryExecutor,
  tenantId: string,
  changesetId: string,
): Promise<ChangeSetView | undefined> {
  const row = await findChangeSetRow(db, tenantId, changesetId);
  if (!row) return undefined;
  return toChangeSetView(row, await listChangeSetSteps(db, row));
}

export function toChangeSetView(row: ChangeSetRow, steps: readonly ChangeSetStepRow[]): ChangeSetView {
  const { plan, changes } = readStoredChangeSet(row);
  const decided = row.approval_state === 'approved' || row.approval_state === 'rejected';
  return {
    changeset_id: row.changeset_id,
    plan_id: row.plan_id,
    workspace: row.workspace,
    generated_by: row.generated_by,
    status: row.status as ChangeSetStatus,
    checksum: row.checksum,
    plan_hash: row.plan_hash,
    idempotency_key: row.idempotency_key,
    submitted_by: row.submitted_by,
    submitted_at: row.submitted_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    verdict: row.verdict_detail,
    approval: {
      state: row.approval_state as ChangeSetView['approval']['state'],
      decided_by: decided ? row.approval_by : null,
      decided_at: decided ? (row.approval_at?.toISOString() ?? null) : null,
      checksum: row.approval_checksum,
      note: row.approval_note,
      expires_at: row.approval_expires_at?.toISOString() ?? null,
    },
    execution: {
      attempts: row.attempts,
      started_at: row.started_at?.toISOString() ?? null,
      finished_at: row.finished_at?.toISOString() ?? null,
      error: row.error_code ? { code: row.error_code, message: row.error_message ?? '' } : null,
      result: row.result,
    },
    steps: steps.map((s) => ({
      step: s.step,
      status: s.status as ChangeSetStepStatus,
      attempt: s.attempt,
      message: s.message,
      detail: s.detail,
      duration_ms: s.duration_ms,
      at: s.created_at.toISOString(),
    })),
    plan,
    changes: changes.map((c) => {
      const hashes = expectedHashes(c);
      return {
        operation: c.operation,
        path: c.path,
        old_hash: hashes.oldHash ?? null,
        new_hash: hashes.newHash ?? null,
        changed_lines: countChangedLines(c),
      };
    }),
  };
}

export interface ChangeSetSummary {
  changeset_id: string;
  plan_id: string;
  workspace: string;
  status: ChangeSetStatus;
  verdict: string;
  risk_effective: string;
  approval_state: string;
  /** When a pending approval lapses (the change set is then rejected); null when none was set. */
  approval_expires_at: string | null;
  submitted_by: string;
  submitted_at: string;
  updated_at: string;
}

/** The tenant's change sets, newest first, keyset-paginated on (submitted_at, changeset_id). */
export async function listChangeSets(
  db: QueryExecutor,
  tenantId: string,
  options: {
    limit: number;
    status?: ChangeSetStatus;
    /** Only change sets in this approval state (`pending`: waiting for a person). @defaultValue any */
    approval?: string;
    before?: { submitted_at: string; changeset_id: string };
  },
): Promise<{ items: ChangeSetSummary[]; next_cursor: string | null }> {
  let query = db
    .selectFrom('changesets')
    .select([
      'changeset_id',
      'plan_id',
      'workspace',
      'status',
      'verdict',
      'risk_effective',
      'approval_state',
      'approval_expires_at',
      'submitted_by',
      'submitted_at',
      'updated_at',
    ])
    .where('tenant_id', '=', tenantId)
    .orderBy('submitted_at', 'desc')
    .orderBy('changeset_id', 'desc')
    .limit(options.limit + 1);
  if (options.status) query = query.where('status', '=', options.status);
  if (options.approval) query = query.where('approval_state', '=', options.approval);
  if (options.before) {
    const before = options.before;
    query = query.where((eb) =>
      eb.or([
        eb('submitted_at', '<', new Date(before.submitted_at)),
        eb.and([
          eb('submitted_at', '=', new Date(before.submitted_at)),
          eb('changeset_id', '<', before.changeset_id),
        ]),
      ]),
    );
  }
  const rows = await query.execute();
  const page = rows.slice(0, options.limit);
  const last = page.at(-1);
  return {
    items: page.map((r) => ({
      ...r,
      status: r.status as ChangeSetStatus,
      approval_expires_at: r.approval_expires_at?.toISOString() ?? null,
      submitted_at: r.submitted_at.toISOString(),
      updated_at: r.updated_at.toISOString(),
    })),
    next_cursor:
      rows.length > options.limit && last
        ? encodeCursor({ submitted_at: last.submitted_at.toISOString(), changeset_id: last.changeset_id })
        : null,
  };
}

export type ApproveChangeSetResult =
  | { status: 'approved'; row: ChangeSetRow }
  | { status: 'already_approved'; row: ChangeSetRow }
  | { status: 'not_found' }
  | { status: 'self_approval'; row: ChangeSetRow }
  | { status: 'checksum_mismatch'; row: ChangeSetRow }
  | { status: 'invalid_state'; row: ChangeSetRow; reason: string }
  /** The approval's deadline passed: the change set is rejected (now, if nobody had done it yet). */
  | { status: 'expired'; row: ChangeSetRow };

/**
 * Approves a change set that waits for a person, in the caller's transaction: the approver must not be the
 * submitter, and the approval binds to the stored checksum (and plan hash) — the one the approver names, when
 * they name one. A refused self-approval is recorded and audited too (the caller commits, then answers 403).
 * Approving twice by the same approver is answered as `already_approved`, so a retried request is harmless.
 * Past the approval's deadline nothing is approved, whether or not the sweeper has come by: the change set is
 * rejected by the expiry here, in this transaction, and the answer is `expired`.
 */
export async function approveChangeSet(
  trx: QueryExecutor,
  input: {
    tenantId: string;
    changesetId: string;
    approver: string;
    /** The person or system the approving key belongs to, recorded next to `approver` in the audit row. */
    approverOwner?: string;
    checksum?: string;
    note?: string;
    /** The clock the deadline is checked against. @defaultValue the current time */
    now?: Date;
  },
): Promise<ApproveChangeSetResult> {
  const row = await findChangeSetRow(trx, input.tenantId, input.changesetId, { forUpdate: true });
  if (!row) return { status: 'not_found' };
  const expired = await expiredApproval(trx, row, input.now ?? new Date());
  if (expired) return { status: 'expired', row: expired };
  if (row.approval_state === 'approved') {
    return row.approval_by === input.approver
      ? { status: 'already_approved', row }
      : { status: 'invalid_state', row, reason: `it was already approved by ${row.approval_by}` };
  }
  const stateProblem = approvalStateProblem(row);
  if (stateProblem) return { status: 'invalid_state', row, reason: stateProblem };
  const key = { tenant_id: row.tenant_id, changeset_id: row.changeset_id };
  if (row.submitted_by === input.approver) {
    await recordChangeSetSteps(trx, [
      {
        ...key,
        attempt: 0,
        step: 'approval_refused',
        status: 'failed',
        message: 'the submitter may not approve their own change set',
        detail: {
          by: input.approver,
          ...(input.approverOwner ? { by_owner: input.approverOwner } : {}),
        },
        audit: { event_type: 'CHANGESET_APPROVAL_REFUSED', level: 'warn' },
      },
    ]);
    return { status: 'self_approval', row };
  }
  if (input.checksum !== undefined && input.checksum !== row.checksum)
    return { status: 'checksum_mismatch', row };
  const now = input.now ?? new Date();
  const approved = await storeDecision(
    trx,
    row,
    {
      approval_state: 'approved',
      approval_by: input.approver,
      approval_at: now,
      approval_checksum: row.checksum,
      approval_plan_hash: row.plan_hash,
      approval_note: input.note ?? null,
      queued_at: now,
      updated_at: now,
    },
    {
      step: 'approved',
      status: 'ok',
      message: `approved by ${input.approver}; bound to checksum ${row.checksum}`,
      detail: {
        by: input.approver,
        ...(input.approverOwner ? { by_owner: input.approverOwner } : {}),
        checksum: row.checksum,
        plan_hash: row.plan_hash,
        ...(input.note ? { note: input.note } : {}),
      },
      audit: { event_type: 'CHANGESET_APPROVED', level: 'info' },
    },
  );
  return { status: 'approved', row: approved };
}

export type RejectChangeSetResult =
  | { status: 'rejected'; row: ChangeSetRow }
  | { status: 'already_rejected'; row: ChangeSetRow }
  | { status: 'not_found' }
  | { status: 'invalid_state'; row: ChangeSetRow; reason: string }
  /** The approval's deadline passed before this rejection: the expiry rejected it (now, or earlier). */
  | { status: 'expired'; row: ChangeSetRow };

/**
 * Rejects a change set that waits for a person. Final: it never runs, and cannot be approved afterwards.
 * Past the deadline the expiry rejects it instead (`expired`), so the audit trail says what really happened.
 */
export async function rejectChangeSet(
  trx: QueryExecutor,
  input: {
    tenantId: string;
    changesetId: string;
    rejecter: string;
    /** The person or system the rejecting key belongs to, recorded next to `rejecter` in the audit row. */
    rejecterOwner?: string;
    reason?: string;
    /** The clock the deadline is checked against. @defaultValue the current time */
    now?: Date;
  },
): Promise<RejectChangeSetResult> {
  const row = await findChangeSetRow(trx, input.tenantId, input.changesetId, { forUpdate: true });
  if (!row) return { status: 'not_found' };
  const expired = await expiredApproval(trx, row, input.now ?? new Date());
  if (expired) return { status: 'expired', row: expired };
  if (row.approval_state === 'rejected') {
    return row.approval_by === input.rejecter
      ? { status: 'already_rejected', row }
      : { status: 'invalid_state', row, reason: `it was already rejected by ${row.approval_by}` };
  }
  if (row.approval_state === 'approved')
    return { status: 'invalid_state', row, reason: `it was approved by ${row.approval_by}` };
  const stateProblem = approvalStateProblem(row);
  if (stateProblem) return { status: 'invalid_state', row, reason: stateProblem };
  const now = new Date();
  const rejected = await storeDecision(
    trx,
    row,
    {
      approval_state: 'rejected',
      approval_by: input.rejecter,
      approval_at: now,
      approval_note: input.reason ?? null,
      status: 'rejected',
      finished_at: now,
      updated_at: now,
    },
    {
      step: 'rejected',
      status: 'ok',
      message: `rejected by ${input.rejecter}${input.reason ? `: ${input.reason}` : ''}`,
      detail: {
        by: input.rejecter,
        ...(input.rejecterOwner ? { by_owner: input.rejecterOwner } : {}),
        ...(input.reason ? { reason: input.reason } : {}),
      },
      audit: { event_type: 'CHANGESET_REJECTED', level: 'warn' },
    },
  );
  return { status: 'rejected', row: rejected };
}

/**
 * The change set as the expiry left it when its approval's deadline has passed — rejected by
 * {@link EXPIRY_ACTOR} earlier, or now (with the row locked by the caller) — else undefined.
 */
async function expiredApproval(
  trx: QueryExecutor,
  row: ChangeSetRow,
  now: Date,
): Promise<ChangeSetRow | undefined> {
  if (row.approval_state === 'rejected' && row.approval_by === EXPIRY_ACTOR) return row;
  if (row.approval_state !== 'pending' || row.status !== 'pending' || row.verdict === 'DENY')
    return undefined;
  if (!row.approval_expires_at || !isPastDeadline(row.approval_expires_at, now)) return undefined;
  const deadline = row.approval_expires_at.toISOString();
  await notifyApproval(trx, row, 'changeset.approval_expired', now);
  return storeDecision(
    trx,
    row,
    {
      approval_state: 'rejected',
      approval_by: EXPIRY_ACTOR,
      approval_at: now,
      approval_note: `nobody approved it before its deadline (${deadline})`,
      status: 'rejected',
      finished_at: now,
      updated_at: now,
    },
    {
      step: 'approval_expired',
      status: 'failed',
      message: `approval expired at ${deadline}: rejected, it will never run`,
      detail: { by: EXPIRY_ACTOR, expires_at: deadline, risk_effective: row.risk_effective },
      audit: { event_type: 'CHANGESET_APPROVAL_EXPIRED', level: 'warn' },
    },
  );
}

/** Records a notification about a change set's approval, in the caller's transaction. */
async function notifyApproval(
  trx: QueryExecutor,
  row: ChangeSetRow,
  type: 'changeset.awaiting_approval' | 'changeset.approval_expiring' | 'changeset.approval_expired',
  now?: Date,
): Promise<void> {
  const deadline = row.approval_expires_at?.toISOString() ?? null;
  const summaries = {
    'changeset.awaiting_approval': `Change set ${row.changeset_id} (risk ${row.risk_effective}, workspace "${row.workspace}") waits for approval${deadline ? ` until ${deadline}` : ''}.`,
    'changeset.approval_expiring': `Change set ${row.changeset_id} (risk ${row.risk_effective}) will be rejected unless someone approves it by ${deadline}.`,
    'changeset.approval_expired': `Nobody approved change set ${row.changeset_id} before ${deadline}; it was rejected and will never run.`,
  };
  await recordNotifications(trx, [
    {
      tenant_id: row.tenant_id,
      event_type: type,
      subject: { kind: 'changeset', id: row.changeset_id },
      summary: summaries[type],
      details: {
        changeset_id: row.changeset_id,
        workspace: row.workspace,
        risk_effective: row.risk_effective,
        checksum: row.checksum,
        expires_at: deadline,
      },
      ...(now ? { occurred_at: now } : {}),
    },
  ]);
}

/**
 * Records one "approval expires soon" notification for each waiting change set whose deadline falls within
 * `withinMs` of `now` (and has not passed), once per change set; rows locked elsewhere are skipped.
 */
export async function warnExpiringApprovals(
  db: QueryExecutor,
  options: { withinMs: number; now?: Date; limit?: number },
): Promise<number> {
  const now = options.now ?? new Date();
  const horizon = new Date(now.getTime() + options.withinMs);
  return db.transaction().execute(async (trx) => {
    const due = await trx
      .selectFrom('changesets')
      .select(['tenant_id', 'changeset_id'])
      .where('approval_state', '=', 'pending')
      .where('status', '=', 'pending')
      .where('approval_expiry_warned_at', 'is', null)
      .where('approval_expires_at', '>', now)
      .where('approval_expires_at', '<=', horizon)
      .orderBy('approval_expires_at')
      .limit(options.limit ?? 200)
      .forUpdate()
      .skipLocked()
      .execute();
    for (const key of due) {
      const row = await trx
        .updateTable('changesets')
        .set({ approval_expiry_warned_at: now })
        .where('tenant_id', '=', key.tenant_id)
        .where('changeset_id', '=', key.changeset_id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await notifyApproval(trx, row, 'changeset.approval_expiring', now);
    }
    return due.length;
  });
}

export interface ExpireOverdueApprovalsResult {
  /** Change sets this pass rejected. */
  expired: number;
  /** Due change sets left for a later pass: locked by an approval in flight, or decided meanwhile. */
  skipped: number;
}

/**
 * One sweep: rejects change sets whose approval deadline is at or before `now`, oldest deadline first, at most
 * `limit`. Each is its own transaction taking the row `FOR UPDATE SKIP LOCKED` — the lock an approval takes —
 * so replicas never wait on each other or on a person, and one approved or expired meanwhile is left alone.
 * Idempotent.
 */
export async function expireOverdueApprovals(
  db: QueryExecutor,
  options: { now?: Date; limit?: number } = {},
): Promise<ExpireOverdueApprovalsResult> {
  const now = options.now ?? new Date();
  const due = await db
    .selectFrom('changesets')
    .select(['tenant_id', 'changeset_id'])
    .where('approval_state', '=', 'pending')
    .where('status', '=', 'pending')
    .where('approval_expires_at', '<=', now)
    .orderBy('approval_expires_at')
    .limit(options.limit ?? 100)
    .execute();
  let expired = 0;
  for (const candidate of due) {
    const done = await db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('changesets')
        .selectAll()
        .where('tenant_id', '=', candidate.tenant_id)
        .where('changeset_id', '=', candidate.changeset_id)
        .forUpdate()
        .skipLocked()
        .executeTakeFirst();
      if (!row || row.approval_state !== 'pending') return false;
      return (await expiredApproval(trx, row, now)) !== undefined;
    });
    if (done) expired += 1;
  }
  return { expired, skipped: due.length - expired };
}

/** Stores a person's decision on the change set and its step (attempt 0), in the caller's transaction. */
async function storeDecision(
  trx: QueryExecutor,
  row: ChangeSetRow,
  decision: Updateable<ChangeSetsTable>,
  step: Omit<ChangeSetStepRecord, keyof ChangeSetKey | 'attempt'>,
): Promise<ChangeSetRow> {
  const key = { tenant_id: row.tenant_id, changeset_id: row.changeset_id };
  const updated = await trx
    .updateTable('changesets')
    .set(decision)
    .where('tenant_id', '=', key.tenant_id)
    .where('changeset_id', '=', key.changeset_id)
    .returningAll()
    .executeTakeFirstOrThrow();
  await recordChangeSetSteps(trx, [{ ...key, attempt: 0, ...step }]);
  return updated;
}

/** Why a change set cannot be approved or rejected now, or undefined when it waits for a person. */
function approvalStateProblem(row: ChangeSetRow): string | undefined {
  if (row.verdict === 'DENY')
    return 'the WriteGate denied it; a denied change set cannot be approved or rejected';
  if (row.approval_state === 'not_required') return 'the WriteGate allowed it; it needs no approval';
  if (row.status !== 'pending') return `it is ${row.status}`;
  return undefined;
}

/**
 * Change sets whose job may have been lost: executable ones (allowed or approved, not started) last enqueued
 * before `queuedBefore`, and ones an execution left half-way before writing anything (an executing status, no
 * journal in flight, untouched since `stalledBefore` — their job ran out of attempts while Postgres was away).
 * Locks the rows it returns (`SKIP LOCKED`) when run in a transaction.
 */
export async function findChangeSetsToEnqueue(
  db: QueryExecutor,
  options: { queuedBefore: Date; stalledBefore: Date; limit: number },
): Promise<ChangeSetKey[]> {
  const rows = await sql<ChangeSetKey>`
    select c.tenant_id, c.changeset_id from changesets c
     where (c.status = 'pending' and c.approval_state in ('not_required', 'approved') and c.verdict <> 'DENY'
            and (c.queued_at is null or c.queued_at < ${options.queuedBefore}))
        or (c.status in ('validating', 'backing_up', 'applying', 'verifying', 'health_checking') and c.updated_at < ${options.stalledBefore}
            and (c.queued_at is null or c.queued_at < ${options.queuedBefore})
            and not exists (select 1 from changeset_journals j
                             where j.tenant_id = c.tenant_id and j.changeset_id = c.changeset_id
                               and j.phase in ('prepared', 'applying', 'applied', 'verifying', 'rolling_back')))
     order by c.queued_at nulls first
     limit ${options.limit}
       for update of c skip locked`.execute(db);
  return rows.rows;
}

/** Notes that the change sets were (re-)enqueued now. */
export async function markChangeSetsQueued(db: QueryExecutor, keys: readonly ChangeSetKey[]): Promise<void> {
  if (keys.length === 0) return;
  await sql`
    update changesets as c set queued_at = now()
      from unnest(${keys.map((k) => k.tenant_id)}::text[], ${keys.map((k) => k.changeset_id)}::text[]) as k(tenant_id, changeset_id)
     where c.tenant_id = k.tenant_id and c.changeset_id = k.changeset_id`.execute(db);
}
