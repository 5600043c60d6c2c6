import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { AuditViewSchema, EventBatchSchema, GateSchema, IncomingEventSchema, IngestResultSchema, TaskViewSchema } from '@warden/domain';
import { registerChangeSetPaths } from './routes/changesets.js';
import { registerLeadPaths } from './routes/lead.js';
import { registerTriggerPaths } from './routes/triggers.js';

const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.array(z.object({ path: z.string(), message: z.string() })),
    }),
  })
  .meta({ id: 'Error' });

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: ErrorSchema } } });
const json = <S extends z.ZodType>(description: string, schema: S) => ({ description, content: { 'application/json': { schema } } });
const common = {
  400: errorResponse('Invalid input; `details` names each failing path'),
  401: errorResponse('Missing or invalid API key'),
  403: errorResponse('The API key lacks the scope'),
};

let built: object | undefined;

/**
 * The OpenAPI 3.1 document, generated from the same zod schemas the routes validate with, so the document
 * cannot drift from what the API accepts. Built once: schema ids live in zod's global registry.
 */
export function buildOpenApiDocument(): object {
  built ??= generate();
  return built;
}

function generate(): object {
  const registry = new OpenAPIRegistry();
  const bearer = registry.registerComponent('securitySchemes', 'apiKey', { type: 'http', scheme: 'bearer', description: 'A Warden API key (`wdn_…`)' });
  const security = [{ [bearer.name]: [] }];
  // `.meta({ id })` makes each a named component; the route handlers validate with the very same schemas.
  const Event = IncomingEventSchema.meta({ id: 'IncomingEvent' });
  const Batch = EventBatchSchema.meta({ id: 'EventBatch' });
  const IngestResult = IngestResultSchema.meta({ id: 'IngestResult' });
  const Task = TaskViewSchema.meta({ id: 'Task' });
  const Audit = AuditViewSchema.meta({ id: 'Audit' });
  const taskParams = z.object({ id: z.string().meta({ description: 'The task id the producer chose' }) });

  registry.registerPath({
    method: 'post',
    path: '/v1/events',
    summary: 'Send one task event or a batch of up to 500',
    description: 'Answers 202 once every event is durable in Postgres. `tenant_id` comes from the API key. Scope `events:write`.',
    security,
    request: { body: { content: { 'application/json': { schema: z.union([Event, Batch]) } } } },
    responses: { 202: json('Accepted (new) and duplicate event counts', IngestResult), ...common, 413: errorResponse('Body too large') },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/tasks/{id}',
    summary: 'A task with its status, metadata and open gates',
    description: 'Scope `tasks:read`.',
    security,
    request: { params: taskParams },
    responses: { 200: json('The task', Task), ...common, 404: errorResponse('No such task for this tenant') },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/tasks/{id}/audits',
    summary: "A task's audit trail, oldest first, keyset-paginated",
    description: 'Scope `tasks:read`.',
    security,
    request: {
      params: taskParams,
      query: z.object({ limit: z.number().int().min(1).max(100).optional(), cursor: z.string().optional() }),
    },
    responses: {
      200: json('A page of audit rows', z.object({ items: z.array(Audit), next_cursor: z.string().nullable() })),
      ...common,
      404: errorResponse('No such task for this tenant'),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/tasks/{id}/gates/{gate}/release',
    summary: 'Release a pause gate (a person lets a paused task go on)',
    description: 'Audited as GATE_RELEASED with the releasing key. The task returns to `running` once no gate holds it. Scope `tasks:write`.',
    security,
    request: {
      params: taskParams.extend({ gate: z.string().meta({ description: 'The gate id' }) }),
      body: { content: { 'application/json': { schema: z.object({ note: z.string().max(2000).optional() }) } } },
    },
    responses: { 200: json('The released gate', GateSchema.meta({ id: 'Gate' })), ...common, 404: errorResponse('No such gate for this task'), 409: errorResponse('Already released') },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/tasks/{id}/unblock',
    summary: 'Unblock a blocked task (a person overrides a BLOCK, with a reason)',
    description: 'The only way out of `blocked`: no event from the agent can do it. Audited as TASK_UNBLOCKED with the key and the reason. Scope `tasks:write`.',
    security,
    request: { params: taskParams, body: { content: { 'application/json': { schema: z.object({ reason: z.string().min(1).max(2000) }) } } } },
    responses: { 200: json('The task, now running', Task), ...common, 404: errorResponse('No such task for this tenant'), 409: errorResponse('The task is not blocked') },
  });
  registerChangeSetPaths(registry, { security, common, errorResponse, json, Audit });
  registerTriggerPaths(registry, { security, common, errorResponse, json });
  registerLeadPaths(registry, { security, common, errorResponse, json });
  for (const path of ['/healthz', '/readyz']) {
    registry.registerPath({ method: 'get', path, summary: path === '/healthz' ? 'The process is alive' : 'Postgres and migrations are ready', responses: { 200: { description: 'OK' }, 503: { description: 'Not ready' } } });
  }

  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: { title: 'Warden API', version: '0.1.0', description: 'Control plane for running autonomous AI agents safely in production.' },
  });
}
