import { z } from 'zod';
import {
  denyGate,
  type DenyGateResult,
  type ReleaseGateResult,
  findTaskView,
  listTaskDecisions,
  releaseGate,
  taskExists,
  unblockTask,
  type Db,
} from '@warden/db';
import {
  ActionSchema,
  ConflictError,
  DecisionTypeSchema,
  FindingSchema,
  GateSchema,
  NotFoundError,
  PageQuerySchema,
  TaskIdSchema,
  TaskViewSchema,
} from '@warden/domain';
import { redactSecrets } from '@warden/observability';
import { defineRoute, found, ok, pathParam, type Route } from '../define-route.js';
import { page } from '../schemas.js';
import { AuditPage, auditTrailPage } from '../audit-trail.js';
import { actorOf } from '../auth.js';

/** A gate id, or the checkpoint of the task's open gate: both are short names a policy chose. */
const GateRefSchema = z.string().min(1).max(200);
const ReleaseBodySchema = z.object({ note: z.string().max(2000).optional() }).default({});
/** Denying blocks the task: the person must say why, and the reason joins the audit trail. */
const DenyBodySchema = z.object({
  reason: z.string().trim().min(1, 'say why the task may not go on').max(2000),
});
/** Unblocking overrides a policy's BLOCK: the person must say why, and the reason joins the audit trail. */
const UnblockBodySchema = z.object({
  reason: z.string().trim().min(1, 'say why the task may go on').max(2000),
});
const DecisionsQuerySchema = z.object({
  event_id: z.string().min(1).max(200).optional().meta({ description: 'Only the decision on this event' }),
  limit: z.coerce.number().int().min(1).max(100).default(50),
});

const Task = TaskViewSchema.meta({ id: 'Task' });
const Decision = z
  .object({
    decision_id: z.string(),
    event_id: z.string(),
    decision_type: DecisionTypeSchema,
    reason: z.string(),
    findings: z.array(FindingSchema),
    actions: z.array(ActionSchema),
    policy: z.string(),
    policy_version: z.string(),
    would_have: z.string().nullable(),
    created_at: z.string(),
  })
  .meta({ id: 'Decision' });

const taskId = pathParam(TaskIdSchema, 'task id', 'The task id the producer chose');
const noTask = 'No such task for this tenant';
const notFound = (id: string) => new NotFoundError(`task "${id}" not found`);
const assertTaskExists = async (db: Db, tenantId: string, id: string) => {
  if (!(await taskExists(db, tenantId, id))) throw notFound(id);
};

/**
 * The answer to a person's act on a gate that is not open (the same for release and deny): 404 for no such gate,
 * 409 naming why — ambiguous checkpoint, expired, denied, or released already.
 */
function refuseUnlessDone<R extends { status: string }>(
  result: R | Exclude<ReleaseGateResult, { status: 'released' }>,
  id: string,
  gate: string,
  verb: 'release' | 'deny',
): asserts result is R {
  const closed = result as Exclude<ReleaseGateResult, { status: 'released' }>;
  if (closed.status === 'not_found')
    throw new NotFoundError(
      `task "${id}" has no gate with id "${gate}" and no open gate at checkpoint "${gate}"`,
    );
  if (closed.status === 'ambiguous')
    throw new ConflictError(
      `task "${id}" has ${closed.gateIds.length} open gates at checkpoint "${gate}"; ${verb} one by its id: ${closed.gateIds.join(', ')}`,
    );
  if (closed.status === 'expired')
    throw new ConflictError(
      `gate "${closed.gate.gate_id}" (checkpoint "${closed.gate.checkpoint}") expired at ${closed.gate.expires_at}: nobody released it in time, so the task was blocked; a person may unblock the task with a reason`,
    );
  if (closed.status === 'denied')
    throw new ConflictError(
      `gate "${closed.gate.gate_id}" was denied by ${closed.gate.released_by} at ${closed.gate.released_at}, so the task was blocked; a person may unblock the task with a reason`,
    );
  if (closed.status === 'already_released')
    throw new ConflictError(
      `gate "${closed.gate.gate_id}" was already released by ${closed.gate.released_by} at ${closed.gate.released_at}`,
    );
}

/** Task reads and a person's acts on a task, always scoped to the caller's tenant: another tenant's task is a 404, never a 403. */
export const taskRoutes: Route[] = [
  defineRoute(
    {
      method: 'get',
      path: '/v1/tasks/{id}',
      scope: 'tasks:read',
      summary: 'A task with its status, metadata and open gates',
      params: { id: taskId },
      responses: { 200: { description: 'The task', schema: Task }, 404: noTask },
    },
    async ({ params, auth, deps }) => {
      const view = found(await findTaskView(deps.db, auth.tenantId, params.id), () => notFound(params.id));
      // Metadata is what an agent sent: secret-named fields (an API token it passed along) are not echoed to
      // every key that may read tasks, as they are kept out of log lines.
      return ok({ ...view, metadata: redactSecrets(view.metadata) as Record<string, unknown> });
    },
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/tasks/{id}/audits',
      scope: 'tasks:read',
      summary: "A task's audit trail, oldest first, keyset-paginated",
      params: { id: taskId },
      query: PageQuerySchema,
      responses: { 200: { description: 'A page of audit rows', schema: AuditPage }, 404: noTask },
    },
    async ({ params, query, auth, deps }) =>
      ok(
        await auditTrailPage(
          deps.db,
          auth.tenantId,
          { taskId: params.id, assertExists: () => assertTaskExists(deps.db, auth.tenantId, params.id) },
          query,
        ),
      ),
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/tasks/{id}/decisions',
      scope: 'tasks:read',
      summary: "A task's supervisor decisions, newest first",
      description: 'At most `limit`; `next_cursor` is always null.',
      params: { id: taskId },
      query: DecisionsQuerySchema,
      responses: { 200: { description: 'The decisions', schema: page(Decision) }, 404: noTask },
    },
    async ({ params, query, auth, deps }) => {
      await assertTaskExists(deps.db, auth.tenantId, params.id);
      const items = await listTaskDecisions(deps.db, auth.tenantId, params.id, {
        limit: query.limit,
        ...(query.event_id ? { eventId: query.event_id } : {}),
      });
      return ok({ items, next_cursor: null });
    },
  ),

  // Releasing a pause is a person's decision: audited with the key that did it and its owner, refused across
  // tenants (404). `tasks:approve` only: a key that writes the agent's events never holds it.
  defineRoute(
    {
      method: 'post',
      path: '/v1/tasks/{id}/gates/{gate}/release',
      scope: 'tasks:approve',
      summary: 'Release a pause gate (a person lets a paused task go on)',
      description:
        "`{gate}` is the gate id or, when the task has no gate with that id, the checkpoint of the task's open gate (409 naming the ids when two open gates share it). Audited as GATE_RELEASED with the releasing key and its owner. The task returns to `running` once no gate holds it.",
      params: {
        id: taskId,
        gate: pathParam(GateRefSchema, 'gate id or checkpoint', "The gate id, or the open gate's checkpoint"),
      },
      body: ReleaseBodySchema,
      responses: {
        200: { description: 'The released gate', schema: GateSchema.meta({ id: 'Gate' }) },
        404: 'No such gate (or open checkpoint) for this task',
        409: 'Already released, expired (past its deadline), or two open gates share the checkpoint',
      },
    },
    async ({ params, body, auth, deps }) => {
      const { id, gate } = params;
      const actor = actorOf(auth);
      const result = await deps.db.transaction().execute((trx) =>
        releaseGate(trx, {
          tenantId: auth.tenantId,
          taskId: id,
          gate,
          releasedBy: actor.by,
          releasedByOwner: actor.owner,
          ...(body.note ? { note: body.note } : {}),
        }),
      );
      refuseUnlessDone<Extract<ReleaseGateResult, { status: 'released' }>>(result, id, gate, 'release');
      return ok(result.gate);
    },
  ),

  // A person's no: the gate closes and the task is blocked — the same lookup, scope and refusals as a release.
  defineRoute(
    {
      method: 'post',
      path: '/v1/tasks/{id}/gates/{gate}/deny',
      scope: 'tasks:approve',
      summary: 'Deny a pause gate (a person refuses: the task is blocked), with a reason',
      description:
        "`{gate}` is the gate id or the checkpoint of the task's open gate, as for release. The gate closes as `denied`, the paused task becomes `blocked` (only an unblock with a reason lets it go on), and a GATE_DENIED audit row records the key, its owner and the reason.",
      params: {
        id: taskId,
        gate: pathParam(GateRefSchema, 'gate id or checkpoint', "The gate id, or the open gate's checkpoint"),
      },
      body: DenyBodySchema,
      responses: {
        200: { description: 'The denied gate', schema: GateSchema.meta({ id: 'Gate' }) },
        404: 'No such gate (or open checkpoint) for this task',
        409: 'Already released or denied, expired (past its deadline), or two open gates share the checkpoint',
      },
    },
    async ({ params, body, auth, deps }) => {
      const { id, gate } = params;
      const actor = actorOf(auth);
      const result = await deps.db.transaction().execute((trx) =>
        denyGate(trx, {
          tenantId: auth.tenantId,
          taskId: id,
          gate,
          deniedBy: actor.by,
          deniedByOwner: actor.owner,
          reason: body.reason,
        }),
      );
      refuseUnlessDone<Extract<DenyGateResult, { status: 'denied_now' }>>(result, id, gate, 'deny');
      return ok(result.gate);
    },
  ),

  // The only way out of `blocked`: a person's act with a reason, audited with the key that did it and its owner.
  defineRoute(
    {
      method: 'post',
      path: '/v1/tasks/{id}/unblock',
      scope: 'tasks:approve',
      summary: 'Unblock a blocked task (a person overrides a BLOCK, with a reason)',
      description:
        'The only way out of `blocked`: no event from the agent can do it. Audited as TASK_UNBLOCKED with the key, its owner and the reason.',
      params: { id: taskId },
      body: UnblockBodySchema,
      responses: {
        200: { description: 'The task, now running', schema: Task },
        404: noTask,
        409: 'The task is not blocked',
      },
    },
    async ({ params, body, auth, deps }) => {
      const actor = actorOf(auth);
      const result = await deps.db.transaction().execute((trx) =>
        unblockTask(trx, {
          tenantId: auth.tenantId,
          taskId: params.id,
          unblockedBy: actor.by,
          unblockedByOwner: actor.owner,
          reason: body.reason,
        }),
      );
      if (result.status === 'not_found') throw notFound(params.id);
      if (result.status === 'not_blocked')
        throw new ConflictError(`task "${params.id}" is ${result.current}, not blocked`);
      return ok(await findTaskView(deps.db, auth.tenantId, params.id));
    },
  ),
];
