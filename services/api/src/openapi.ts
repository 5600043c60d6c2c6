import { OpenAPIRegistry, OpenApiGeneratorV31, type ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { bodySchemaOf, type ResponseSpec, type Route } from './define-route.js';
import { API_ROUTES } from './routes/index.js';

const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.array(z.object({ path: z.string(), message: z.string() })),
    }),
  })
  .meta({ id: 'Error' });

/** Every route authenticates, checks a scope and reads some input. */
const COMMON_RESPONSES: Record<number, ResponseSpec> = {
  400: 'Invalid input; `details` names each failing path',
  401: 'Missing or invalid API key',
  403: 'The API key lacks the scope',
};

function responseOf(spec: ResponseSpec): ResponseConfig {
  if (typeof spec === 'string')
    return { description: spec, content: { 'application/json': { schema: ErrorSchema } } };
  return { description: spec.description, content: { 'application/json': { schema: spec.schema } } };
}

function scopeSentence(scope: Route['spec']['scope']): string {
  const scopes = typeof scope === 'string' ? [scope] : scope;
  return `Scope ${scopes.map((s) => `\`${s}\``).join(' or ')}.`;
}

let built: object | undefined;

/**
 * The OpenAPI 3.1 document of the public API, generated from the route declarations themselves (the same
 * zod schemas the routes parse with), so nothing is served that it does not describe. The ops endpoints
 * (`/healthz`, `/readyz`, `/metrics`), this document and Bull Board are not part of it. Built once: schema
 * ids live in zod's global registry.
 */
export function buildOpenApiDocument(): object {
  built ??= generate(API_ROUTES);
  return built;
}

function generate(routes: readonly Route[]): object {
  const registry = new OpenAPIRegistry();
  const bearer = registry.registerComponent('securitySchemes', 'apiKey', {
    type: 'http',
    scheme: 'bearer',
    description: 'A Warden API key (`wdn_…`)',
  });
  const security = [{ [bearer.name]: [] }];
  for (const { spec } of routes) {
    const params = Object.entries(spec.params ?? {});
    const responses = { ...COMMON_RESPONSES, ...spec.responses };
    registry.registerPath({
      method: spec.method,
      path: spec.path,
      summary: spec.summary,
      description: [spec.description, scopeSentence(spec.scope)].filter(Boolean).join(' '),
      security,
      request: {
        ...(params.length > 0
          ? {
              params: z.object(
                Object.fromEntries(
                  params.map(([name, p]) => [name, p.schema.meta({ description: p.description })]),
                ),
              ),
            }
          : {}),
        ...(spec.query ? { query: spec.query } : {}),
        ...(spec.body
          ? { body: { content: { 'application/json': { schema: bodySchemaOf(spec.body) } } } }
          : {}),
      },
      responses: Object.fromEntries(
        Object.entries(responses).map(([status, response]) => [status, responseOf(response)]),
      ),
    });
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Warden API',
      version: '0.1.0',
      description: 'Control plane for running autonomous AI agents safely in production.',
    },
  });
}
