/**
 * Change-set routes (SPEC §5–6): submission through the WriteGate, reads, approval and rejection. Postgres holds
 * the change set before any reply; the enqueue that follows an ALLOW or an approval is an optimisation — when
 * Redis is away the executor's poller enqueues it later.
 */
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import {
  approveChangeSet,
  changeSetAuditTaskId,
  findChangeSetRow,
  findChangeSetView,
  findChangeSetsByIdempotencyKey,
  insertChangeSet,
  listChangeSets,
  listTaskAudits,
  lockIdempotencyKey,
  recordChangeSetSteps,
  rejectChangeSet,
  type ChangeSetRow,
  type ChangeSetStepRecord,
  type Db,
} from '@warden/db';
import {
  ApproveChangeSetSchema,
  AuditCursorSchema,
  ChangeSetIdSchema,
  ChangeSetStateError,
  ChangeSetStatusSchema,
  ChangeSetSubmissionSchema,
  ChangeSetViewSchema,
  ChecksumMismatchError,
  ConflictError,
  ForbiddenError,
  IdempotencyConflictError,
  NotFoundError,
  PageQuerySchema,
  RejectChangeSetSchema,
  SelfApprovalError,
  ValidationError,
  WriteGatePolicySchema,
  canonicalJson,
  changeSetIdempotencyKey,
  computeChangeSetChecksum,
  computePlanHash,
  decodeCursor,
  evaluateWriteGate,
  hasScope,
  parseOrThrow,
  submissionFingerprint,
  writeGatePolicyHash,
  type Scope,
  type WriteGatePolicy,
} from '@warden/domain';
import type { Logger } from '@warden/observability';
import { QUEUE_NAMES, changesetJobId, type WardenQueues } from '@warden/queue';
import { loadPolicyFile } from '@warden/runtime';
import { authOf } from '../auth.js';

/** The WriteGate policy the API gates submissions with, and its hash. */
export interface ApiWriteGatePolicy {
  policy: WriteGatePolicy;
  hash: string;
}

/** Reads and validates the WriteGate policy at start-up; any problem is a ConfigError naming the file and field. */
export async function loadWriteGatePolicyFile(path: string): Promise<ApiWriteGatePolicy> {
  const policy = await loadPolicyFile(path, WriteGatePolicySchema, 'WriteGate policy');
  return { policy, hash: writeGatePolicyHash(policy) };
}

export interface ChangeSetsRouteOptions {
  db: Db;
  queues: WardenQueues;
  logger: Logger;
  writeGate: ApiWriteGatePolicy;
  /** Give up on Redis after this long; the change set is durable already. */
  enqueueTimeoutMs: number;
}

const ListQuerySchema = PageQuerySchema.extend({ status: ChangeSetStatusSchema.optional() });
const ListCursorSchema = z.object({ submitted_at: z.iso.datetime(), changeset_id: z.string() });

/** 403 unless the key has one of `scopes` (or `admin`): reading a change set is for its writers and its approvers. */
function requireAnyScope(...scopes: Scope[]): RequestHandler {
  return (_req, res, next) => {
    const auth = authOf(res);
    if (!scopes.some((scope) => hasScope(auth.scopes, scope)))
      throw new ForbiddenError(`this API key lacks the ${scopes.map((s) => `"${s}"`).join(' or ')} scope`);
    next();
  };
}

function requireScopeOf(scope: Scope): RequestHandler {
  return requireAnyScope(scope);
}

export function changeSetsRouter(options: ChangeSetsRouteOptions): Router {
  const router = Router();
  const { db } = options;

  const enqueue = async (row: Pick<ChangeSetRow, 'tenant_id' | 'changeset_id'>) => {
    try {
      await options.queues.enqueue(
        QUEUE_NAMES.changesets,
        'execute',
        { tenant_id: row.tenant_id, changeset_id: row.changeset_id },
        { jobId: changesetJobId(row.tenant_id, row.changeset_id), timeoutMs: options.enqueueTimeoutMs },
      );
    } catch (error) {
      options.logger.warn(
        {
          module: 'changesets',
          action: 'enqueue',
          status: 'deferred',
          tenant_id: row.tenant_id,
          changeset_id: row.changeset_id,
          error_code: 'enqueue_failed',
          err: error,
        },
        'change set is durable but could not be enqueued now; the executor poller will pick it up',
      );
    }
  };

  router.post('/changesets', requireScopeOf('changesets:write'), async (req, res) => {
    const auth = authOf(res);
    const { plan, changeset } = parseOrThrow(ChangeSetSubmissionSchema, req.body, 'request body');
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
    const verdict = evaluateWriteGate({
      plan,
      changeset,
      policy: options.writeGate.policy,
      policyHash: options.writeGate.hash,
    });
    const submitter = `api_key:${auth.keyId}`;
    const key = { tenant_id: auth.tenantId, changeset_id: changeset.changeset_id };

    const outcome = await db.transaction().execute(async (trx) => {
      // One submission per idempotency key at a time, so two different payloads cannot both slip in.
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
    if (outcome.status === 'exists') {
      // A retried submission is answered with what the first one created; anything else under the id is a conflict.
      if (outcome.row.fingerprint !== fingerprint || outcome.row.checksum !== checksum) {
        throw new ConflictError(
          `change set "${changeset.changeset_id}" exists with other content; choose another changeset_id`,
          [{ path: 'changeset.changeset_id', message: 'already used' }],
        );
      }
      res.setHeader('idempotent-replayed', 'true');
      res.status(200).json(await findChangeSetView(db, auth.tenantId, changeset.changeset_id));
      return;
    }
    if (verdict.verdict === 'ALLOW') await enqueue(outcome.row);
    res.status(201).json(await findChangeSetView(db, auth.tenantId, changeset.changeset_id));
  });

  router.get('/changesets', requireAnyScope('changesets:write', 'changesets:approve'), async (req, res) => {
    const query = parseOrThrow(ListQuerySchema, req.query, 'query');
    let before: z.infer<typeof ListCursorSchema> | undefined;
    if (query.cursor !== undefined) {
      before = decodeCursor(query.cursor, ListCursorSchema);
      if (!before)
        throw new ValidationError('invalid query: cursor: not a cursor this API returned', [
          { path: 'cursor', message: 'not a cursor this API returned' },
        ]);
    }
    res.json(
      await listChangeSets(db, authOf(res).tenantId, {
        limit: query.limit,
        ...(query.status ? { status: query.status } : {}),
        ...(before ? { before } : {}),
      }),
    );
  });

  router.get(
    '/changesets/:id',
    requireAnyScope('changesets:write', 'changesets:approve'),
    async (req, res) => {
      const id = parseOrThrow(ChangeSetIdSchema, req.params.id, 'change set id');
      const view = await findChangeSetView(db, authOf(res).tenantId, id);
      if (!view) throw new NotFoundError(`change set "${id}" not found`);
      res.json(view);
    },
  );

  router.get(
    '/changesets/:id/audits',
    requireAnyScope('changesets:write', 'changesets:approve'),
    async (req, res) => {
      const tenantId = authOf(res).tenantId;
      const id = parseOrThrow(ChangeSetIdSchema, req.params.id, 'change set id');
      const query = parseOrThrow(PageQuerySchema, req.query, 'query');
      let afterAuditId: string | undefined;
      if (query.cursor !== undefined) {
        const cursor = decodeCursor(query.cursor, AuditCursorSchema);
        if (!cursor)
          throw new ValidationError('invalid query: cursor: not a cursor this API returned', [
            { path: 'cursor', message: 'not a cursor this API returned' },
          ]);
        afterAuditId = cursor.after;
      }
      if (!(await findChangeSetRow(db, tenantId, id)))
        throw new NotFoundError(`change set "${id}" not found`);
      res.json(
        await listTaskAudits(db, tenantId, changeSetAuditTaskId(id), {
          limit: query.limit,
          ...(afterAuditId ? { afterAuditId } : {}),
        }),
      );
    },
  );

  // Approval is a second person's decision, bound to the checksum they reviewed; the submitter cannot give it.
  router.post('/changesets/:id/approve', requireScopeOf('changesets:approve'), async (req, res) => {
    const auth = authOf(res);
    const id = parseOrThrow(ChangeSetIdSchema, req.params.id, 'change set id');
    const body = parseOrThrow(ApproveChangeSetSchema, req.body ?? {}, 'request body');
    const approver = `api_key:${auth.keyId}`;
    const result = await db
      .transaction()
      .execute((trx) =>
        approveChangeSet(trx, {
          tenantId: auth.tenantId,
          changesetId: id,
          approver,
          ...(body.checksum ? { checksum: body.checksum } : {}),
          ...(body.note ? { note: body.note } : {}),
        }),
      );
    switch (result.status) {
      case 'not_found':
        throw new NotFoundError(`change set "${id}" not found`);
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
      case 'approved':
        await enqueue(result.row);
        break;
      case 'already_approved':
        res.setHeader('idempotent-replayed', 'true');
        break;
    }
    res.json(await findChangeSetView(db, auth.tenantId, id));
  });

  router.post('/changesets/:id/reject', requireScopeOf('changesets:approve'), async (req, res) => {
    const auth = authOf(res);
    const id = parseOrThrow(ChangeSetIdSchema, req.params.id, 'change set id');
    const body = parseOrThrow(RejectChangeSetSchema, req.body ?? {}, 'request body');
    const result = await db
      .transaction()
      .execute((trx) =>
        rejectChangeSet(trx, {
          tenantId: auth.tenantId,
          changesetId: id,
          rejecter: `api_key:${auth.keyId}`,
          ...(body.reason ? { reason: body.reason } : {}),
        }),
      );
    if (result.status === 'not_found') throw new NotFoundError(`change set "${id}" not found`);
    if (result.status === 'invalid_state')
      throw new ChangeSetStateError(`change set "${id}" cannot be rejected: ${result.reason}`);
    if (result.status === 'already_rejected') res.setHeader('idempotent-replayed', 'true');
    res.json(await findChangeSetView(db, auth.tenantId, id));
  });

  return router;
}

interface OpenApiParts {
  security: Array<Record<string, string[]>>;
  common: Record<number, { description: string; content: Record<string, { schema: z.ZodType }> }>;
  errorResponse: (description: string) => {
    description: string;
    content: Record<string, { schema: z.ZodType }>;
  };
  json: <S extends z.ZodType>(
    description: string,
    schema: S,
  ) => { description: string; content: Record<string, { schema: S }> };
  Audit: z.ZodType;
}

/** The change-set paths of the OpenAPI document, from the schemas the routes above validate with. */
export function registerChangeSetPaths(registry: OpenAPIRegistry, parts: OpenApiParts): void {
  const { security, common, errorResponse, json, Audit } = parts;
  const Submission = ChangeSetSubmissionSchema.meta({ id: 'ChangeSetSubmission' });
  const View = ChangeSetViewSchema.meta({ id: 'ChangeSet' });
  const Approve = ApproveChangeSetSchema.meta({ id: 'ChangeSetApproval' });
  const Reject = RejectChangeSetSchema.meta({ id: 'ChangeSetRejection' });
  const params = z.object({ id: z.string().meta({ description: 'The changeset_id the submitter chose' }) });
  const notFound = { 404: errorResponse('No such change set for this tenant') };
  const conflict = (description: string) => ({ 409: errorResponse(description) });

  registry.registerPath({
    method: 'post',
    path: '/v1/changesets',
    summary: 'Submit a plan and its change set',
    description:
      'Recomputes the checksum (400 `checksum_mismatch` when it differs), runs the WriteGate and stores the verdict with every reason. ' +
      'ALLOW → queued for the executor; NEED_APPROVAL → waits for `approve`; DENY → stored as `denied`. Re-sending the same change set answers 200 with the stored one. Scope `changesets:write`.',
    security,
    request: { body: { content: { 'application/json': { schema: Submission } } } },
    responses: {
      201: json('The stored change set with its verdict', View),
      200: json(
        'The same change set was submitted before: the stored one (header `idempotent-replayed: true`)',
        View,
      ),
      ...common,
      ...conflict(
        'The changeset_id is taken by other content, or the plan id + checksum (idempotency key) was used with other content',
      ),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/changesets',
    summary: "The tenant's change sets, newest first",
    description: 'Scope `changesets:write` or `changesets:approve`.',
    security,
    request: {
      query: z.object({
        status: ChangeSetStatusSchema.optional(),
        limit: z.number().int().min(1).max(100).optional(),
        cursor: z.string().optional(),
      }),
    },
    responses: {
      200: json(
        'A page of change sets',
        z.object({ items: z.array(z.record(z.string(), z.unknown())), next_cursor: z.string().nullable() }),
      ),
      ...common,
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/changesets/{id}',
    summary: 'A change set: verdict, approval, status and every step',
    description: 'Scope `changesets:write` or `changesets:approve`.',
    security,
    request: { params },
    responses: { 200: json('The change set', View), ...common, ...notFound },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/changesets/{id}/audits',
    summary: "A change set's audit trail (rows of the tenant's hash chain), oldest first",
    description: 'Scope `changesets:write` or `changesets:approve`.',
    security,
    request: {
      params,
      query: z.object({ limit: z.number().int().min(1).max(100).optional(), cursor: z.string().optional() }),
    },
    responses: {
      200: json(
        'A page of audit rows',
        z.object({ items: z.array(Audit), next_cursor: z.string().nullable() }),
      ),
      ...common,
      ...notFound,
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/changesets/{id}/approve',
    summary: 'Approve a change set that needs approval',
    description:
      "By another API key than the submitter (403 `self_approval`), bound to the change set's checksum: send the `checksum` you reviewed (400 `checksum_mismatch` when it differs). Then queued for the executor. Scope `changesets:approve`.",
    security,
    request: { params, body: { content: { 'application/json': { schema: Approve } } } },
    responses: {
      200: json('The approved change set', View),
      ...common,
      ...notFound,
      ...conflict(
        'Not waiting for approval (allowed, denied, rejected, running or approved by someone else)',
      ),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/changesets/{id}/reject',
    summary: 'Reject a change set that needs approval (final)',
    description: 'Scope `changesets:approve`.',
    security,
    request: { params, body: { content: { 'application/json': { schema: Reject } } } },
    responses: {
      200: json('The rejected change set', View),
      ...common,
      ...notFound,
      ...conflict('Not waiting for approval'),
    },
  });
}
