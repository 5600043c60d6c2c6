/**
 * Change-set routes (docs/executor.md): submission through the WriteGate, reads, approval and rejection.
 * Postgres holds the change set before any reply; the enqueue that follows an ALLOW or an approval is an
 * optimisation — when Redis is away the executor's poller enqueues it later.
 */
import { z } from 'zod';
import {
  approveChangeSet,
  changeSetAuditTaskId,
  findChangeSetRow,
  findChangeSetView,
  findChangeSetsByIdempotencyKey,
  insertChangeSet,
  listChangeSets,
  lockIdempotencyKey,
  recordChangeSetSteps,
  rejectChangeSet,
  type ChangeSetRow,
  type ChangeSetStepRecord,
} from '@warden/db';
import {
  ApprovalStateSchema,
  ApproveChangeSetSchema,
  ChangeSetIdSchema,
  ChangeSetStateError,
  ChangeSetStatusSchema,
  ChangeSetSubmissionSchema,
  ChangeSetViewSchema,
  ChecksumMismatchError,
  ConflictError,
  IdempotencyConflictError,
  NotFoundError,
  PageQuerySchema,
  RejectChangeSetSchema,
  SelfApprovalError,
  approvalDeadline,
  canonicalJson,
  changeSetIdempotencyKey,
  computeChangeSetChecksum,
  computePlanHash,
  evaluateWriteGate,
  submissionFingerprint,
  type Scope,
} from '@warden/domain';
import { QUEUE_NAMES, changesetJobId } from '@warden/queue';
import { actorOf, type AuthContext } from '../auth.js';
import { readCursor } from '../cursors.js';
import {
  defineRoute,
  found,
  ok,
  pathParam,
  reply,
  requiredBody,
  type ApiDeps,
  type Route,
} from '../define-route.js';
import { enqueueAfterCommit } from '../enqueue-after-commit.js';
import { page } from '../schemas.js';
import { AuditPage, auditTrailPage } from '../audit-trail.js';

const ListQuerySchema = PageQuerySchema.extend({
  status: ChangeSetStatusSchema.optional(),
  /** `pending`: the change sets waiting for a person's approval. */
  approval: ApprovalStateSchema.optional(),
});
const ListCursorSchema = z.object({ submitted_at: z.iso.datetime(), changeset_id: z.string() });

const Submission = ChangeSetSubmissionSchema.meta({ id: 'ChangeSetSubmission' });
const View = ChangeSetViewSchema.meta({ id: 'ChangeSet' });
const Approve = ApproveChangeSetSchema.meta({ id: 'ChangeSetApproval' });
const Reject = RejectChangeSetSchema.meta({ id: 'ChangeSetRejection' });

const changesetId = pathParam(ChangeSetIdSchema, 'change set id', 'The changeset_id the submitter chose');
/** Reading a change set is for its writers and its approvers. */
const READERS: Scope[] = ['changesets:write', 'changesets:approve'];
const noChangeSet = 'No such change set for this tenant';
const notFound = (id: string) => new NotFoundError(`change set "${id}" not found`);
const replayed = { 'idempotent-replayed': 'true' };

/** The 409 message for a decision that came after the approval's deadline. */
function expiredMessage(id: string, verb: 'approved' | 'rejected', row: ChangeSetRow): string {
  const deadline = row.approval_expires_at?.toISOString() ?? 'its deadline';
  return `change set "${id}" cannot be ${verb}: its approval expired at ${deadline} and it was rejected by ${row.approval_by}; submit it again to ask for a new approval`;
}

function enqueue(deps: ApiDeps, row: Pick<ChangeSetRow, 'tenant_id' | 'changeset_id'>): Promise<boolean> {
  const key = { tenant_id: row.tenant_id, changeset_id: row.changeset_id };
  return enqueueAfterCommit(
    () =>
      deps.queues.enqueue(QUEUE_NAMES.changesets, 'execute', key, {
        jobId: changesetJobId(row.tenant_id, row.changeset_id),
        timeoutMs: deps.enqueueTimeoutMs,
      }),
    {
      logger: deps.logger,
      fields: { module: 'changesets', ...key },
      message: 'change set is durable but could not be enqueued now; the executor poller will pick it up',
    },
  );
}

/**
 * Checks the checksum, runs the WriteGate and stores the change set with its verdict and first steps, in one
 * transaction under the idempotency key's lock, so two different payloads cannot both slip in.
 */
async function storeSubmission(deps: ApiDeps, auth: AuthContext, submission: z.output<typeof Submission>) {
  const { plan, changeset } = submission;
  const checksum = computeChangeSetChecksum(changeset.changes);
  if (checksum !== changeset.checksum) {
    const message = `checksum mismatch: changeset.checksum is ${changeset.checksum} but the changes hash to ${checksum} (SHA-256 of their canonical JSON); the change set was altered after it was sealed`;
    throw new ChecksumMismatchError(message, [
      { path: 'changeset.checksum', message: `expected ${checksum}` },
    ]);
  }
  const planHash = computePlanHash(plan);
  const idempotencyKey = changeSetIdempotencyKey(plan.plan_id, checksum);
  const fingerprint = submissionFingerprint({ workspace: changeset.workspace, planHash, checksum });
  // One policy for the whole submission, taken once: a version activated meanwhile judges the next one.
  const writeGate = deps.writeGate.policyFor(auth.tenantId);
  const verdict = evaluateWriteGate({
    plan,
    changeset,
    policy: writeGate.policy,
    policyHash: writeGate.hash,
  });
  const submitter = `api_key:${auth.keyId}`;
  const key = { tenant_id: auth.tenantId, changeset_id: changeset.changeset_id };

  const outcome = await deps.db.transaction().execute(async (trx) => {
    await lockIdempotencyKey(trx, auth.tenantId, idempotencyKey);
    const conflicting = (await findChangeSetsByIdempotencyKey(trx, auth.tenantId, idempotencyKey)).find(
      (row) => row.fingerprint !== fingerprint && row.changeset_id !== changeset.changeset_id,
    );
    if (conflicting) return { status: 'idempotency_conflict' as const, row: conflicting };
    const inserted = await insertChangeSet(trx, {
      ...key,
      plan_id: plan.plan_id,
      workspace: changeset.workspace,
      generated_by: changeset.generated_by,
      checksum,
      plan_hash: planHash,
      idempotency_key: idempotencyKey,
      fingerprint,
      plan_json: canonicalJson(plan),
      changes_json: canonicalJson(changeset.changes),
      verdict,
      status: verdict.verdict === 'DENY' ? 'denied' : 'pending',
      approval_state: verdict.verdict === 'NEED_APPROVAL' ? 'pending' : 'not_required',
      approval_expires_at: approvalDeadline(writeGate.policy, verdict.risk_effective, new Date()),
      submitted_by: submitter,
      queued: verdict.verdict === 'ALLOW',
    });
    if (inserted.status === 'exists') return inserted;
    const blocking = verdict.reasons.filter((r) => r.outcome === 'deny' || r.outcome === 'need_approval');
    const steps: ChangeSetStepRecord[] = [
      {
        ...key,
        attempt: 0,
        step: 'submitted',
        status: 'ok',
        message: `submitted by ${submitter}: ${changeset.changes.length} change(s) to workspace "${changeset.workspace}", checksum verified`,
        detail: {
          by: submitter,
          plan_id: plan.plan_id,
          workspace: changeset.workspace,
          checksum,
          plan_hash: planHash,
          generated_by: changeset.generated_by,
          files: verdict.stats.files,
        },
        audit: { event_type: 'CHANGESET_SUBMITTED', level: 'info' },
      },
      {
        ...key,
        attempt: 0,
        step: 'gated',
        status: verdict.verdict === 'DENY' ? 'failed' : 'ok',
        message:
          verdict.verdict === 'ALLOW'
            ? `WriteGate: ALLOW (risk ${verdict.risk_effective})`
            : `WriteGate: ${verdict.verdict} (risk ${verdict.risk_effective}): ${blocking.map((r) => r.message).join('; ')}`,
        detail: {
          verdict: verdict.verdict,
          risk_effective: verdict.risk_effective,
          policy_hash: verdict.policy_hash,
          policy_version: verdict.policy_version,
          gate_version: verdict.gate_version,
          reasons: verdict.reasons,
        },
        audit: {
          event_type:
            verdict.verdict === 'ALLOW'
              ? 'CHANGESET_ALLOWED'
              : verdict.verdict === 'DENY'
                ? 'CHANGESET_DENIED'
                : 'CHANGESET_APPROVAL_REQUIRED',
          level: verdict.verdict === 'DENY' ? 'warn' : 'info',
        },
      },
    ];
    await recordChangeSetSteps(trx, steps);
    return inserted;
  });

  if (outcome.status === 'idempotency_conflict') {
    throw new IdempotencyConflictError(
      `plan "${plan.plan_id}" with checksum ${checksum} was submitted before as change set "${outcome.row.changeset_id}" with other content (workspace or plan); an idempotency key cannot be reused for a different request`,
      [{ path: 'changeset', message: `conflicts with change set "${outcome.row.changeset_id}"` }],
    );
  }
  // A retried submission is answered with what the first one created; anything else under the id is a conflict.
  if (
    outcome.status === 'exists' &&
    (outcome.row.fingerprint !== fingerprint || outcome.row.checksum !== checksum)
  ) {
    throw new ConflictError(
      `change set "${changeset.changeset_id}" exists with other content; choose another changeset_id`,
      [{ path: 'changeset.changeset_id', message: 'already used' }],
    );
  }
  return { outcome, verdict };
}

export const changeSetRoutes: Route[] = [
  defineRoute(
    {
      method: 'post',
      path: '/v1/changesets',
      scope: 'changesets:write',
      summary: 'Submit a plan and its change set',
      description:
        'Recomputes the checksum (400 `checksum_mismatch` when it differs), runs the WriteGate and stores the verdict with every reason. ' +
        'ALLOW → queued for the executor; NEED_APPROVAL → waits for `approve`; DENY → stored as `denied`. Re-sending the same change set answers 200 with the stored one.',
      body: requiredBody(Submission),
      responses: {
        201: { description: 'The stored change set with its verdict', schema: View },
        200: {
          description:
            'The same change set was submitted before: the stored one (header `idempotent-replayed: true`)',
          schema: View,
        },
        409: 'The changeset_id is taken by other content, or the plan id + checksum (idempotency key) was used with other content',
      },
    },
    async ({ body, auth, deps }) => {
      const { outcome, verdict } = await storeSubmission(deps, auth, body);
      const id = body.changeset.changeset_id;
      if (outcome.status === 'exists')
        return ok(await findChangeSetView(deps.db, auth.tenantId, id), replayed);
      if (verdict.verdict === 'ALLOW') await enqueue(deps, outcome.row);
      return reply(201, await findChangeSetView(deps.db, auth.tenantId, id));
    },
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/changesets',
      scope: READERS,
      summary: "The tenant's change sets, newest first",
      query: ListQuerySchema,
      responses: {
        200: { description: 'A page of change sets', schema: page(z.record(z.string(), z.unknown())) },
      },
    },
    async ({ query, auth, deps }) => {
      const before = readCursor(query.cursor, ListCursorSchema);
      return ok(
        await listChangeSets(deps.db, auth.tenantId, {
          limit: query.limit,
          ...(query.status ? { status: query.status } : {}),
          ...(query.approval ? { approval: query.approval } : {}),
          ...(before ? { before } : {}),
        }),
      );
    },
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/changesets/{id}',
      scope: READERS,
      summary: 'A change set: verdict, approval, status and every step',
      params: { id: changesetId },
      responses: { 200: { description: 'The change set', schema: View }, 404: noChangeSet },
    },
    async ({ params, auth, deps }) =>
      ok(found(await findChangeSetView(deps.db, auth.tenantId, params.id), () => notFound(params.id))),
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/changesets/{id}/audits',
      scope: READERS,
      summary: "A change set's audit trail (rows of the tenant's hash chain), oldest first",
      params: { id: changesetId },
      query: PageQuerySchema,
      responses: { 200: { description: 'A page of audit rows', schema: AuditPage }, 404: noChangeSet },
    },
    async ({ params, query, auth, deps }) => {
      const assertExists = async () => {
        if (!(await findChangeSetRow(deps.db, auth.tenantId, params.id))) throw notFound(params.id);
      };
      return ok(
        await auditTrailPage(
          deps.db,
          auth.tenantId,
          { taskId: changeSetAuditTaskId(params.id), assertExists },
          query,
        ),
      );
    },
  ),

  // Approval is a second person's decision, bound to the checksum they reviewed; the submitter cannot give it.
  defineRoute(
    {
      method: 'post',
      path: '/v1/changesets/{id}/approve',
      scope: 'changesets:approve',
      summary: 'Approve a change set that needs approval',
      description:
        "By another API key than the submitter (403 `self_approval`), bound to the change set's checksum: send the `checksum` you reviewed (400 `checksum_mismatch` when it differs). Then queued for the executor.",
      params: { id: changesetId },
      body: Approve,
      responses: {
        200: { description: 'The approved change set', schema: View },
        404: noChangeSet,
        409: 'Not waiting for approval (allowed, denied, rejected, running, approved by someone else, or its approval expired)',
      },
    },
    async ({ params, body, auth, deps }) => {
      const { id } = params;
      const result = await deps.db.transaction().execute((trx) =>
        approveChangeSet(trx, {
          tenantId: auth.tenantId,
          changesetId: id,
          approver: actorOf(auth).by,
          approverOwner: actorOf(auth).owner,
          ...(body.checksum ? { checksum: body.checksum } : {}),
          ...(body.note ? { note: body.note } : {}),
        }),
      );
      switch (result.status) {
        case 'not_found':
          throw notFound(id);
        case 'self_approval':
          throw new SelfApprovalError(
            `change set "${id}" was submitted by this API key; another person must approve it`,
          );
        case 'checksum_mismatch':
          throw new ChecksumMismatchError(
            `checksum mismatch: you approved ${body.checksum}, but change set "${id}" has checksum ${result.row.checksum}; review it again`,
            [{ path: 'checksum', message: `the change set's checksum is ${result.row.checksum}` }],
          );
        case 'invalid_state':
          throw new ChangeSetStateError(`change set "${id}" cannot be approved: ${result.reason}`);
        case 'expired':
          throw new ChangeSetStateError(expiredMessage(id, 'approved', result.row));
        case 'approved':
          await enqueue(deps, result.row);
          break;
        case 'already_approved':
          return ok(await findChangeSetView(deps.db, auth.tenantId, id), replayed);
      }
      return ok(await findChangeSetView(deps.db, auth.tenantId, id));
    },
  ),

  defineRoute(
    {
      method: 'post',
      path: '/v1/changesets/{id}/reject',
      scope: 'changesets:approve',
      summary: 'Reject a change set that needs approval (final)',
      params: { id: changesetId },
      body: Reject,
      responses: {
        200: { description: 'The rejected change set', schema: View },
        404: noChangeSet,
        409: 'Not waiting for approval',
      },
    },
    async ({ params, body, auth, deps }) => {
      const { id } = params;
      const result = await deps.db.transaction().execute((trx) =>
        rejectChangeSet(trx, {
          tenantId: auth.tenantId,
          changesetId: id,
          rejecter: actorOf(auth).by,
          rejecterOwner: actorOf(auth).owner,
          ...(body.reason ? { reason: body.reason } : {}),
        }),
      );
      if (result.status === 'not_found') throw notFound(id);
      if (result.status === 'invalid_state')
        throw new ChangeSetStateError(`change set "${id}" cannot be rejected: ${result.reason}`);
      if (result.status === 'expired')
        throw new ChangeSetStateError(expiredMessage(id, 'rejected', result.row));
      return ok(
        await findChangeSetView(deps.db, auth.tenantId, id),
        result.status === 'already_rejected' ? replayed : undefined,
      );
    },
  ),
];
