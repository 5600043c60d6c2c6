import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
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
  type Db,
} from '@warden/db';
import {
  EventNameSchema,
  ExecutionStatusSchema,
  ExecutionViewSchema,
  MAX_BACKFILL_RUNS,
  NotFoundError,
  TriggerDefinitionSchema,
  TriggerFieldsSchema,
  TriggerPatchSchema,
  TriggerStatusViewSchema,
  TriggerViewSchema,
  ValidationError,
  decodeCursor,
  parseOrThrow,
} from '@warden/domain';
import type { Logger } from '@warden/observability';
import type { WardenQueues } from '@warden/queue';
import { authOf, requireScope } from '../auth.js';

export const ForceQuerySchema = z.object({ force: z.enum(['true', 'false']).optional() });
export const ListTriggersQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(400).optional(),
  tag: z.string().min(1).max(64).optional(),
  enabled: z.enum(['true', 'false']).optional(),
});
export const PauseBodySchema = z.object({ note: z.string().max(2000).optional() }).strict();
export const ResumeBodySchema = z
  .object({ note: z.string().max(2000).optional(), backfill: z.boolean().default(false) })
  .strict();
export const RunBodySchema = z
  .object({
    params: z.record(z.string(), z.unknown()).default({}),
    override_overlap: z.boolean().default(false),
    request_id: z.string().min(1).max(200).optional(),
  })
  .strict();
export const HistoryQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(400).optional(),
  status: ExecutionStatusSchema.optional(),
});
export const StatusQuerySchema = z.object({
  fires: z.coerce.number().int().min(0).max(100).default(5),
  window_hours: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 90)
    .default(24),
});
const ListCursorSchema = z.object({ after: z.string() });
const HistoryCursorSchema = z.object({ s: z.string(), id: z.string().uuid() });
const ExecutionIdSchema = z.string().uuid('must be an execution id (a UUID)');

export interface TriggersRouterOptions {
  db: Db;
  queues: WardenQueues;
  logger: Logger;
  /** How long a request waits for Redis to take a follow-up job; the sweeper catches up on what did not make it. @defaultValue `500` */
  enqueueTimeoutMs?: number;
}

function badCursor(): ValidationError {
  return new ValidationError('invalid query: cursor: not a cursor this API returned', [
    { path: 'cursor', message: 'not a cursor this API returned' },
  ]);
}

/**
 * Cron trigger management (SPEC §6), scoped to the caller's tenant: another tenant's trigger is a 404. Every
 * change commits in Postgres first; the scheduler hears of it through a `reconcile` job (and its periodic
 * reconcile, should Redis be away), and a manual run or backfill through a `fire` job (and its sweeper).
 */
export function triggersRouter(options: TriggersRouterOptions): Router {
  const { db, queues } = options;
  const log = options.logger.child({ module: 'triggers' });
  const timeoutMs = options.enqueueTimeoutMs ?? 500;
  const router = Router();

  const name = (value: unknown) => parseOrThrow(EventNameSchema, value, 'trigger name');
  const actorOf = (res: Parameters<typeof authOf>[0]) => `api_key:${authOf(res).keyId}`;
  const tellScheduler = async (jobs: () => Promise<unknown>) => {
    try {
      await jobs();
    } catch (error) {
      log.warn(
        { action: 'enqueue', status: 'error', err: error },
        'could not reach the scheduler queue; its reconcile interval and sweeper will catch up',
      );
    }
  };
  const reconcile = (triggerId: string) =>
    tellScheduler(() => queues.enqueue('cron-fires', 'reconcile', { trigger_id: triggerId }, { timeoutMs }));

  router.post('/triggers', requireScope('triggers:write'), async (req, res) => {
    const auth = authOf(res);
    const query = parseOrThrow(ForceQuerySchema, req.query, 'query');
    const definition = parseOrThrow(TriggerDefinitionSchema, req.body ?? {}, 'request body');
    const change = await db
      .transaction()
      .execute((trx) =>
        registerTrigger(trx, {
          tenantId: auth.tenantId,
          definition,
          actor: actorOf(res),
          force: query.force === 'true',
        }),
      );
    if (change.changed) await reconcile(change.trigger.trigger_id);
    res
      .status(change.created ? 201 : 200)
      .json({ trigger: toTriggerView(change.trigger), created: change.created, changed: change.changed });
  });

  router.get('/triggers', requireScope('triggers:read'), async (req, res) => {
    const query = parseOrThrow(ListTriggersQuerySchema, req.query, 'query');
    let after: string | undefined;
    if (query.cursor !== undefined) {
      const cursor = decodeCursor(query.cursor, ListCursorSchema);
      if (!cursor) throw badCursor();
      after = cursor.after;
    }
    res.json(
      await listTriggers(db, authOf(res).tenantId, {
        limit: query.limit,
        ...(after !== undefined ? { after } : {}),
        ...(query.tag !== undefined ? { tag: query.tag } : {}),
        ...(query.enabled !== undefined ? { enabled: query.enabled === 'true' } : {}),
      }),
    );
  });

  router.get('/triggers/:name', requireScope('triggers:read'), async (req, res) => {
    res.json(toTriggerView(await getTrigger(db, authOf(res).tenantId, name(req.params.name))));
  });

  router.patch('/triggers/:name', requireScope('triggers:write'), async (req, res) => {
    const auth = authOf(res);
    const query = parseOrThrow(ForceQuerySchema, req.query, 'query');
    const change = await db
      .transaction()
      .execute((trx) =>
        updateTrigger(trx, {
          tenantId: auth.tenantId,
          eventName: name(req.params.name),
          patch: req.body ?? {},
          actor: actorOf(res),
          force: query.force === 'true',
        }),
      );
    if (change.changed) await reconcile(change.trigger.trigger_id);
    res.json({ trigger: toTriggerView(change.trigger), changed: change.changed });
  });

  router.delete('/triggers/:name', requireScope('triggers:write'), async (req, res) => {
    const auth = authOf(res);
    const deleted = await db
      .transaction()
      .execute((trx) =>
        deleteTrigger(trx, {
          tenantId: auth.tenantId,
          eventName: name(req.params.name),
          actor: actorOf(res),
        }),
      );
    await reconcile(deleted.trigger_id);
    res.json({ deleted: true, trigger_id: deleted.trigger_id });
  });

  router.post('/triggers/:name/pause', requireScope('triggers:write'), async (req, res) => {
    const auth = authOf(res);
    const body = parseOrThrow(PauseBodySchema, req.body ?? {}, 'request body');
    const result = await db
      .transaction()
      .execute((trx) =>
        pauseTrigger(trx, {
          tenantId: auth.tenantId,
          eventName: name(req.params.name),
          actor: actorOf(res),
          ...(body.note !== undefined ? { note: body.note } : {}),
        }),
      );
    res.json({ trigger: toTriggerView(result.trigger), changed: result.changed });
  });

  router.post('/triggers/:name/resume', requireScope('triggers:write'), async (req, res) => {
    const auth = authOf(res);
    const body = parseOrThrow(ResumeBodySchema, req.body ?? {}, 'request body');
    const result = await db.transaction().execute((trx) =>
      resumeTrigger(trx, {
        tenantId: auth.tenantId,
        eventName: name(req.params.name),
        actor: actorOf(res),
        backfill: body.backfill,
        maxBackfill: MAX_BACKFILL_RUNS,
        ...(body.note !== undefined ? { note: body.note } : {}),
      }),
    );
    if (result.backfill.length > 0) {
      const stamp = Date.now();
      await tellScheduler(() =>
        queues.enqueueBulk(
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
          { timeoutMs },
        ),
      );
    }
    res.json({
      trigger: toTriggerView(result.trigger),
      changed: result.changed,
      backfilled: result.backfill.map((b) => ({
        execution_id: b.execution_id,
        scheduled_for: b.scheduled_for.toISOString(),
      })),
    });
  });

  router.post('/triggers/:name/run', requireScope('triggers:write'), async (req, res) => {
    const auth = authOf(res);
    const body = parseOrThrow(RunBodySchema, req.body ?? {}, 'request body');
    const trigger = await getTrigger(db, auth.tenantId, name(req.params.name));
    const run = await db.transaction().execute((trx) =>
      requestManualRun(trx, {
        tenant_id: auth.tenantId,
        trigger_id: trigger.trigger_id,
        event_name: trigger.definition.event_name,
        params: body.params,
        override_overlap: body.override_overlap,
        actor: actorOf(res),
        ...(body.request_id !== undefined ? { request_id: body.request_id } : {}),
      }),
    );
    if (run.created) {
      await tellScheduler(() =>
        queues.enqueue(
          'cron-fires',
          'fire',
          {
            tenant_id: auth.tenantId,
            trigger_id: trigger.trigger_id,
            scheduled_for: run.scheduled_for.toISOString(),
          },
          { jobId: `manual-${run.execution_id}`, timeoutMs },
        ),
      );
    }
    res
      .status(202)
      .json({
        execution_id: run.execution_id,
        scheduled_for: run.scheduled_for.toISOString(),
        created: run.created,
      });
  });

  router.get('/triggers/:name/executions', requireScope('triggers:read'), async (req, res) => {
    const auth = authOf(res);
    const query = parseOrThrow(HistoryQuerySchema, req.query, 'query');
    let before: { scheduled_for: string; execution_id: string } | undefined;
    if (query.cursor !== undefined) {
      const cursor = decodeCursor(query.cursor, HistoryCursorSchema);
      if (!cursor || Number.isNaN(Date.parse(cursor.s))) throw badCursor();
      before = { scheduled_for: cursor.s, execution_id: cursor.id };
    }
    const trigger = await getTrigger(db, auth.tenantId, name(req.params.name));
    res.json(
      await listTriggerExecutions(db, auth.tenantId, trigger.trigger_id, {
        limit: query.limit,
        ...(before ? { before } : {}),
        ...(query.status ? { status: query.status } : {}),
      }),
    );
  });

  router.get('/triggers/:name/executions/:execution', requireScope('triggers:read'), async (req, res) => {
    const auth = authOf(res);
    const trigger = await getTrigger(db, auth.tenantId, name(req.params.name));
    const executionId = parseOrThrow(ExecutionIdSchema, req.params.execution, 'execution id');
    const row = await findExecution(db, executionId);
    if (!row || row.trigger_id !== trigger.trigger_id || row.tenant_id !== auth.tenantId)
      throw new NotFoundError(
        `execution "${executionId}" of trigger "${trigger.definition.event_name}" not found`,
      );
    res.json(toExecutionView(row));
  });

  router.get('/triggers/:name/status', requireScope('triggers:read'), async (req, res) => {
    const query = parseOrThrow(StatusQuerySchema, req.query, 'query');
    res.json(
      await triggerStatus(db, authOf(res).tenantId, name(req.params.name), {
        fires: query.fires,
        windowHours: query.window_hours,
      }),
    );
  });

  return router;
}

interface TriggerOpenApiParts {
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
}

/** The trigger paths of the OpenAPI document, from the schemas the routes above validate with. */
export function registerTriggerPaths(registry: OpenAPIRegistry, parts: TriggerOpenApiParts): void {
  const { security, common, errorResponse, json } = parts;
  const Definition = TriggerFieldsSchema.meta({ id: 'TriggerDefinition' });
  const Patch = TriggerPatchSchema.meta({ id: 'TriggerPatch' });
  const Trigger = TriggerViewSchema.meta({ id: 'Trigger' });
  const Execution = ExecutionViewSchema.meta({ id: 'TriggerExecution' });
  const Status = TriggerStatusViewSchema.meta({ id: 'TriggerStatus' });
  const params = z.object({ name: z.string().meta({ description: "The trigger's event_name" }) });
  const notFound = { 404: errorResponse('No such trigger for this tenant') };
  const read = 'Scope `triggers:read`.';
  const write = 'Scope `triggers:write`.';
  const change = z.object({ trigger: Trigger, changed: z.boolean() });

  registry.registerPath({
    method: 'post',
    path: '/v1/triggers',
    summary: 'Register (create or update by event_name) a cron trigger',
    description: `Strict 5-field cron or \`@every <n>s|m|h\`, IANA time zones. Raising migration_weight needs shadow consistency ≥ the bar unless \`?force=true\` (audited). ${write}`,
    security,
    request: { query: ForceQuerySchema, body: { content: { 'application/json': { schema: Definition } } } },
    responses: {
      201: json('Created', z.object({ trigger: Trigger, created: z.boolean(), changed: z.boolean() })),
      200: json(
        'Updated, or unchanged',
        z.object({ trigger: Trigger, created: z.boolean(), changed: z.boolean() }),
      ),
      ...common,
      409: errorResponse('The weight may not be raised yet'),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/triggers',
    summary: "The tenant's triggers by name, keyset-paginated",
    description: read,
    security,
    request: { query: ListTriggersQuerySchema },
    responses: {
      200: json(
        'A page of triggers',
        z.object({ items: z.array(Trigger), next_cursor: z.string().nullable() }),
      ),
      ...common,
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/triggers/{name}',
    summary: 'One trigger',
    description: read,
    security,
    request: { params },
    responses: { 200: json('The trigger', Trigger), ...common, ...notFound },
  });
  registry.registerPath({
    method: 'patch',
    path: '/v1/triggers/{name}',
    summary: 'Change some fields of a trigger (nested objects merge; the result is validated whole)',
    description: write,
    security,
    request: {
      params,
      query: ForceQuerySchema,
      body: { content: { 'application/json': { schema: Patch } } },
    },
    responses: {
      200: json('The trigger', change),
      ...common,
      ...notFound,
      409: errorResponse('The weight may not be raised yet'),
    },
  });
  registry.registerPath({
    method: 'delete',
    path: '/v1/triggers/{name}',
    summary: 'Delete a trigger (its ledger stays)',
    description: write,
    security,
    request: { params },
    responses: {
      200: json('Deleted', z.object({ deleted: z.boolean(), trigger_id: z.string() })),
      ...common,
      ...notFound,
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/triggers/{name}/pause',
    summary: 'Pause with a note (audited; fires while paused are recorded as skipped)',
    description: write,
    security,
    request: { params, body: { content: { 'application/json': { schema: PauseBodySchema } } } },
    responses: { 200: json('The trigger', change), ...common, ...notFound },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/triggers/{name}/resume',
    summary: 'Resume (audited); `backfill` runs the fires skipped while paused',
    description: write,
    security,
    request: { params, body: { content: { 'application/json': { schema: ResumeBodySchema } } } },
    responses: {
      200: json(
        'The trigger and the backfilled runs',
        change.extend({
          backfilled: z.array(z.object({ execution_id: z.string(), scheduled_for: z.string() })),
        }),
      ),
      ...common,
      ...notFound,
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/triggers/{name}/run',
    summary: 'Run now (manual, through governance, counts toward daily caps)',
    description: `\`request_id\` makes retries safe: the same id returns the same run. ${write}`,
    security,
    request: { params, body: { content: { 'application/json': { schema: RunBodySchema } } } },
    responses: {
      202: json(
        'Accepted',
        z.object({ execution_id: z.string(), scheduled_for: z.string(), created: z.boolean() }),
      ),
      ...common,
      ...notFound,
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/triggers/{name}/executions',
    summary: 'Execution history, newest first, keyset-paginated',
    description: read,
    security,
    request: { params, query: HistoryQuerySchema },
    responses: {
      200: json(
        'A page of executions',
        z.object({ items: z.array(Execution), next_cursor: z.string().nullable() }),
      ),
      ...common,
      ...notFound,
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/triggers/{name}/executions/{execution}',
    summary: 'One execution with its output',
    description: read,
    security,
    request: { params: params.extend({ execution: z.string().meta({ description: 'execution_id' }) }) },
    responses: { 200: json('The execution', Execution), ...common, ...notFound },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/triggers/{name}/status',
    summary:
      'Configuration, next fires, last runs, success rate, skips by reason, breaker and migration state',
    description: read,
    security,
    request: { params, query: StatusQuerySchema },
    responses: { 200: json('The status', Status), ...common, ...notFound },
  });
}
