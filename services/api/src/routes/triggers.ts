import { z } from 'zod';
import {
  deleteTrigger,
  findExecution,
  getTrigger,
  listTriggerExecutions,
  listTriggers,
  pauseTrigger,
  registerTrigger,
  requestManualRun,
  resumeTrigger,
  toExecutionView,
  toTriggerView,
  triggerStatus,
  updateTrigger,
} from '@warden/db';
import {
  EventNameSchema,
  EventTimeSchema,
  ExecutionStatusSchema,
  ForbiddenError,
  hasScope,
  ExecutionViewSchema,
  MAX_BACKFILL_RUNS,
  NotFoundError,
  TriggerDefinitionSchema,
  TriggerPatchSchema,
  TriggerStatusViewSchema,
  TriggerViewSchema,
} from '@warden/domain';
import type { AuthContext } from '../auth.js';
import { readCursor } from '../cursors.js';
import { defineRoute, ok, pathParam, reply, type ApiDeps, type Route } from '../define-route.js';
import { enqueueAfterCommit } from '../enqueue-after-commit.js';
import { page } from '../schemas.js';

const ForceQuerySchema = z.object({
  force: z.enum(['true', 'false']).optional().meta({
    description:
      'Override the cutover gate (raise the agent share without proven shadow consistency, or loosen the migration bar): needs the `triggers:approve` scope; audited as forced with the key',
  }),
});
const ListTriggersQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(400).optional(),
  tag: z.string().min(1).max(64).optional(),
  enabled: z.enum(['true', 'false']).optional(),
});
const PauseBodySchema = z.object({ note: z.string().max(2000).optional() }).strict();
const ResumeBodySchema = z
  .object({ note: z.string().max(2000).optional(), backfill: z.boolean().default(false) })
  .strict();
const RunBodySchema = z
  .object({
    params: z.record(z.string(), z.unknown()).default({}),
    override_overlap: z.boolean().default(false),
    request_id: z.string().min(1).max(200).optional(),
  })
  .strict();
const HistoryQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(400).optional(),
  status: ExecutionStatusSchema.optional(),
});
const StatusQuerySchema = z.object({
  fires: z.coerce.number().int().min(0).max(100).default(5),
  window_hours: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 90)
    .default(24),
});
const ListCursorSchema = z.object({ after: z.string() });
const HistoryCursorSchema = z.object({
  // A time Postgres can compare with: `Date.parse` also takes years like -271821, which Postgres refuses (a 500).
  s: EventTimeSchema,
  id: z.string().uuid(),
});
const ExecutionIdSchema = z.string().uuid('must be an execution id (a UUID)');

const Trigger = TriggerViewSchema.meta({ id: 'Trigger' });
const Execution = ExecutionViewSchema.meta({ id: 'TriggerExecution' });
const Change = z.object({ trigger: Trigger, changed: z.boolean() });
const Registered = Change.extend({ created: z.boolean() });

const name = pathParam(EventNameSchema, 'trigger name', "The trigger's event_name");
const noTrigger = 'No such trigger for this tenant';
const weightRefused = 'The weight may not be raised yet';
const actorOf = (auth: { keyId: string }) => `api_key:${auth.keyId}`;
/**
 * `?force=true` overrides the cutover gate, so it needs more than `triggers:write`: the calling key must hold
 * `triggers:approve` (audited as forced, by that key). Keys with only `triggers:write` get a 403.
 */
function forceOf(query: { force?: 'true' | 'false' | undefined }, auth: AuthContext): boolean {
  if (query.force !== 'true') return false;
  if (!hasScope(auth.scopes, 'triggers:approve'))
    throw new ForbiddenError('force needs the "triggers:approve" scope (it overrides the cutover gate)');
  return true;
}

/**
 * A `lead_scan` handler runs lead scans of the tenant, which the API otherwise allows only with `lead:run`: a key
 * that may write triggers must not gain that by naming one. Changing a built-in scan's other fields (its
 * schedule, limits) needs `triggers:write` only.
 */
function assertMayScheduleLeadScans(body: unknown, auth: AuthContext): void {
  const fields = (body ?? {}) as { agent?: unknown; fallback?: unknown };
  const namesLeadScan = [fields.agent, fields.fallback].some(
    (target) => typeof target === 'object' && target !== null && 'lead_scan' in target,
  );
  if (namesLeadScan && !hasScope(auth.scopes, 'lead:run'))
    throw new ForbiddenError('a "lead_scan" handler needs the "lead:run" scope (it runs lead scans)');
}

/**
 * Every trigger change commits in Postgres first; the scheduler hears of it through a `reconcile` job (and its
 * periodic reconcile, should Redis be away), and of a manual run or backfill through a `fire` job (and its sweeper).
 */
const tellScheduler = (deps: ApiDeps, jobs: () => Promise<unknown>) =>
  enqueueAfterCommit(jobs, {
    logger: deps.logger,
    fields: { module: 'triggers' },
    message: 'could not reach the scheduler queue; its reconcile interval and sweeper will catch up',
  });
const reconcile = (deps: ApiDeps, triggerId: string) =>
  tellScheduler(deps, () =>
    deps.queues.enqueue(
      'cron-fires',
      'reconcile',
      { trigger_id: triggerId },
      { timeoutMs: deps.enqueueTimeoutMs },
    ),
  );

/** Cron trigger management (docs/scheduler.md), scoped to the caller's tenant: another tenant's trigger is a 404. */
export const triggerRoutes: Route[] = [
  defineRoute(
    {
      method: 'post',
      path: '/v1/triggers',
      scope: 'triggers:write',
      summary: 'Register (create or update by event_name) a cron trigger',
      description:
        'Strict 5-field cron or `@every <n>s|m|h`, IANA time zones. Raising the agent share (the weight, leaving shadow, lifting `always`) needs shadow consistency ≥ the stored bar, and loosening the bar is refused, unless `?force=true` (scope `triggers:approve`, audited).',
      query: ForceQuerySchema,
      body: TriggerDefinitionSchema.meta({ id: 'TriggerDefinition' }),
      responses: {
        201: { description: 'Created', schema: Registered },
        200: { description: 'Updated, or unchanged', schema: Registered },
        403: 'force without the triggers:approve scope, or a lead_scan handler without lead:run',
        409: weightRefused,
      },
    },
    async ({ query, body, auth, deps }) => {
      assertMayScheduleLeadScans(body, auth);
      const change = await deps.db.transaction().execute((trx) =>
        registerTrigger(trx, {
          tenantId: auth.tenantId,
          definition: body,
          actor: actorOf(auth),
          force: forceOf(query, auth),
        }),
      );
      if (change.changed) await reconcile(deps, change.trigger.trigger_id);
      return reply(change.created ? 201 : 200, {
        trigger: toTriggerView(change.trigger),
        created: change.created,
        changed: change.changed,
      });
    },
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/triggers',
      scope: 'triggers:read',
      summary: "The tenant's triggers by name, keyset-paginated",
      query: ListTriggersQuerySchema,
      responses: { 200: { description: 'A page of triggers', schema: page(Trigger) } },
    },
    async ({ query, auth, deps }) => {
      const after = readCursor(query.cursor, ListCursorSchema)?.after;
      return ok(
        await listTriggers(deps.db, auth.tenantId, {
          limit: query.limit,
          ...(after !== undefined ? { after } : {}),
          ...(query.tag !== undefined ? { tag: query.tag } : {}),
          ...(query.enabled !== undefined ? { enabled: query.enabled === 'true' } : {}),
        }),
      );
    },
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/triggers/{name}',
      scope: 'triggers:read',
      summary: 'One trigger',
      params: { name },
      responses: { 200: { description: 'The trigger', schema: Trigger }, 404: noTrigger },
    },
    async ({ params, auth, deps }) =>
      ok(toTriggerView(await getTrigger(deps.db, auth.tenantId, params.name))),
  ),

  defineRoute(
    {
      method: 'patch',
      path: '/v1/triggers/{name}',
      scope: 'triggers:write',
      summary: 'Change some fields of a trigger (nested objects merge; the result is validated whole)',
      params: { name },
      query: ForceQuerySchema,
      // updateTrigger parses the patch itself, then checks the merged definition inside its transaction.
      body: { schema: TriggerPatchSchema.meta({ id: 'TriggerPatch' }), read: (raw: unknown) => raw ?? {} },
      responses: {
        200: { description: 'The trigger', schema: Change },
        403: 'force without the triggers:approve scope, or a lead_scan handler without lead:run',
        404: noTrigger,
        409: weightRefused,
      },
    },
    async ({ params, query, body, auth, deps }) => {
      assertMayScheduleLeadScans(body, auth);
      const change = await deps.db.transaction().execute((trx) =>
        updateTrigger(trx, {
          tenantId: auth.tenantId,
          eventName: params.name,
          patch: body,
          actor: actorOf(auth),
          force: forceOf(query, auth),
        }),
      );
      if (change.changed) await reconcile(deps, change.trigger.trigger_id);
      return ok({ trigger: toTriggerView(change.trigger), changed: change.changed });
    },
  ),

  defineRoute(
    {
      method: 'delete',
      path: '/v1/triggers/{name}',
      scope: 'triggers:write',
      summary: 'Delete a trigger (its ledger stays)',
      params: { name },
      responses: {
        200: { description: 'Deleted', schema: z.object({ deleted: z.boolean(), trigger_id: z.string() }) },
        404: noTrigger,
      },
    },
    async ({ params, auth, deps }) => {
      const deleted = await deps.db
        .transaction()
        .execute((trx) =>
          deleteTrigger(trx, { tenantId: auth.tenantId, eventName: params.name, actor: actorOf(auth) }),
        );
      await reconcile(deps, deleted.trigger_id);
      return ok({ deleted: true, trigger_id: deleted.trigger_id });
    },
  ),

  defineRoute(
    {
      method: 'post',
      path: '/v1/triggers/{name}/pause',
      scope: 'triggers:write',
      summary: 'Pause with a note (audited; fires while paused are recorded as skipped)',
      params: { name },
      body: PauseBodySchema,
      responses: { 200: { description: 'The trigger', schema: Change }, 404: noTrigger },
    },
    async ({ params, body, auth, deps }) => {
      const result = await deps.db.transaction().execute((trx) =>
        pauseTrigger(trx, {
          tenantId: auth.tenantId,
          eventName: params.name,
          actor: actorOf(auth),
          ...(body.note !== undefined ? { note: body.note } : {}),
        }),
      );
      return ok({ trigger: toTriggerView(result.trigger), changed: result.changed });
    },
  ),

  defineRoute(
    {
      method: 'post',
      path: '/v1/triggers/{name}/resume',
      scope: 'triggers:write',
      summary: 'Resume (audited); `backfill` runs the fires skipped while paused',
      params: { name },
      body: ResumeBodySchema,
      responses: {
        200: {
          description: 'The trigger and the backfilled runs',
          schema: Change.extend({
            backfilled: z.array(z.object({ execution_id: z.string(), scheduled_for: z.string() })),
          }),
        },
        404: noTrigger,
      },
    },
    async ({ params, body, auth, deps }) => {
      const result = await deps.db.transaction().execute((trx) =>
        resumeTrigger(trx, {
          tenantId: auth.tenantId,
          eventName: params.name,
          actor: actorOf(auth),
          backfill: body.backfill,
          maxBackfill: MAX_BACKFILL_RUNS,
          ...(body.note !== undefined ? { note: body.note } : {}),
        }),
      );
      if (result.backfill.length > 0) {
        const stamp = Date.now();
        await tellScheduler(deps, () =>
          deps.queues.enqueueBulk(
            'cron-fires',
            'fire',
            result.backfill.map((b) => ({
              payload: {
                tenant_id: auth.tenantId,
                trigger_id: result.trigger.trigger_id,
                scheduled_for: b.scheduled_for.toISOString(),
              },
              options: { jobId: `backfill-${b.execution_id}-${stamp}` },
            })),
            { timeoutMs: deps.enqueueTimeoutMs },
          ),
        );
      }
      return ok({
        trigger: toTriggerView(result.trigger),
        changed: result.changed,
        backfilled: result.backfill.map((b) => ({
          execution_id: b.execution_id,
          scheduled_for: b.scheduled_for.toISOString(),
        })),
      });
    },
  ),

  defineRoute(
    {
      method: 'post',
      path: '/v1/triggers/{name}/run',
      scope: 'triggers:write',
      summary: 'Run now (manual, through governance, counts toward daily caps)',
      description: '`request_id` makes retries safe: the same id returns the same run.',
      params: { name },
      body: RunBodySchema,
      responses: {
        202: {
          description: 'Accepted',
          schema: z.object({ execution_id: z.string(), scheduled_for: z.string(), created: z.boolean() }),
        },
        404: noTrigger,
      },
    },
    async ({ params, body, auth, deps }) => {
      const trigger = await getTrigger(deps.db, auth.tenantId, params.name);
      const run = await deps.db.transaction().execute((trx) =>
        requestManualRun(trx, {
          tenant_id: auth.tenantId,
          trigger_id: trigger.trigger_id,
          event_name: trigger.definition.event_name,
          params: body.params,
          override_overlap: body.override_overlap,
          actor: actorOf(auth),
          ...(body.request_id !== undefined ? { request_id: body.request_id } : {}),
        }),
      );
      if (run.created) {
        await tellScheduler(deps, () =>
          deps.queues.enqueue(
            'cron-fires',
            'fire',
            {
              tenant_id: auth.tenantId,
              trigger_id: trigger.trigger_id,
              scheduled_for: run.scheduled_for.toISOString(),
            },
            { jobId: `manual-${run.execution_id}`, timeoutMs: deps.enqueueTimeoutMs },
          ),
        );
      }
      return reply(202, {
        execution_id: run.execution_id,
        scheduled_for: run.scheduled_for.toISOString(),
        created: run.created,
      });
    },
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/triggers/{name}/executions',
      scope: 'triggers:read',
      summary: 'Execution history, newest first, keyset-paginated',
      params: { name },
      query: HistoryQuerySchema,
      responses: { 200: { description: 'A page of executions', schema: page(Execution) }, 404: noTrigger },
    },
    async ({ params, query, auth, deps }) => {
      const cursor = readCursor(query.cursor, HistoryCursorSchema);
      const trigger = await getTrigger(deps.db, auth.tenantId, params.name);
      return ok(
        await listTriggerExecutions(deps.db, auth.tenantId, trigger.trigger_id, {
          limit: query.limit,
          ...(cursor ? { before: { scheduled_for: cursor.s, execution_id: cursor.id } } : {}),
          ...(query.status ? { status: query.status } : {}),
        }),
      );
    },
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/triggers/{name}/executions/{execution}',
      scope: 'triggers:read',
      summary: 'One execution with its output',
      params: { name, execution: pathParam(ExecutionIdSchema, 'execution id', 'execution_id') },
      responses: { 200: { description: 'The execution', schema: Execution }, 404: noTrigger },
    },
    async ({ params, auth, deps }) => {
      const trigger = await getTrigger(deps.db, auth.tenantId, params.name);
      const row = await findExecution(deps.db, params.execution);
      if (!row || row.trigger_id !== trigger.trigger_id || row.tenant_id !== auth.tenantId)
        throw new NotFoundError(
          `execution "${params.execution}" of trigger "${trigger.definition.event_name}" not found`,
        );
      return ok(toExecutionView(row));
    },
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/triggers/{name}/status',
      scope: 'triggers:read',
      summary:
        'Configuration, next fires, last runs, success rate, skips by reason, breaker and migration state',
      params: { name },
      query: StatusQuerySchema,
      responses: {
        200: { description: 'The status', schema: TriggerStatusViewSchema.meta({ id: 'TriggerStatus' }) },
        404: noTrigger,
      },
    },
    async ({ params, query, auth, deps }) =>
      ok(
        await triggerStatus(deps.db, auth.tenantId, params.name, {
          fires: query.fires,
          windowHours: query.window_hours,
        }),
      ),
  ),
];
