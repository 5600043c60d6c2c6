/**
 * What the API serves and what `/openapi.json` describes are the same set of endpoints: the routes found by
 * walking the express router (method + path) must equal the document's paths, in both directions. Only the
 * endpoints that are not part of the public API are left out, each by name, and each must still be served.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestApi, type TestApi } from '../support/api.js';

/** Served, but not the public API: the ops endpoints, the document itself, and Bull Board under its mount. */
const NOT_DOCUMENTED = ['GET /healthz', 'GET /readyz', 'GET /metrics', 'GET /openapi.json'];
const NOT_DOCUMENTED_MOUNT = '/admin/queues';
/** The web console: HTML pages for people (docs/console.md), not JSON endpoints; its acts call documented routes. */
const CONSOLE_MOUNT = '/console';

interface LayerLike {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  rawPath?: unknown;
  name?: string;
  handle?: { stack?: LayerLike[]; router?: { stack?: LayerLike[] } };
}

const join = (prefix: string, path: string) =>
  (prefix + (path === '/' ? '' : path)).replace(/\/+/g, '/') || '/';

/**
 * `METHOD /path` of every route in an express 5 router (router 2.x: `rawPath` is a mount's path), nested
 * routers included. A mount that is not a router (a sub-application, a static handler) is `USE /mount`.
 */
function servedRoutes(stack: LayerLike[], prefix = ''): string[] {
  const routes: string[] = [];
  for (const layer of stack) {
    if (layer.route) {
      const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
      for (const method of Object.keys(layer.route.methods).filter((m) => m !== '_all'))
        for (const path of paths) routes.push(`${method.toUpperCase()} ${join(prefix, path)}`);
      continue;
    }
    const mount = typeof layer.rawPath === 'string' ? layer.rawPath : '/';
    const inner = layer.handle?.stack ?? layer.handle?.router?.stack;
    if (inner) routes.push(...servedRoutes(inner, join(prefix, mount)));
    else if (mount !== '/') routes.push(`USE ${join(prefix, mount)}`);
  }
  return [...new Set(routes)];
}

describe('the OpenAPI document against the router', () => {
  let api: TestApi;
  let served: string[];
  let documented: string[];

  beforeAll(async () => {
    api = await startTestApi();
    const app = api.service.app() as unknown as { router: { stack: LayerLike[] } };
    served = servedRoutes(app.router.stack);
    const openapi = (await call(`${api.url}/openapi.json`)).body as {
      paths: Record<string, Record<string, unknown>>;
    };
    documented = Object.entries(openapi.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ':$1')}`),
    );
  });

  afterAll(async () => {
    await api?.stop();
  });

  const isExcluded = (route: string) =>
    NOT_DOCUMENTED.includes(route) ||
    route.split(' ')[1]!.startsWith(NOT_DOCUMENTED_MOUNT) ||
    route.split(' ')[1] === CONSOLE_MOUNT ||
    route.split(' ')[1]!.startsWith(`${CONSOLE_MOUNT}/`);

  it('should document every served route', () => {
    expect(served.filter((route) => !isExcluded(route) && !documented.includes(route))).toEqual([]);
  });

  it('should serve every documented route', () => {
    expect(documented.filter((route) => !served.includes(route))).toEqual([]);
  });

  it('should leave out exactly the routes excluded by name, which are still served', () => {
    expect(NOT_DOCUMENTED.filter((route) => !served.includes(route))).toEqual([]);
    expect(served.some((route) => route.split(' ')[1]!.startsWith(NOT_DOCUMENTED_MOUNT))).toBe(true);
    expect(served).toContain(`GET ${CONSOLE_MOUNT}/inbox`);
    expect(documented.filter(isExcluded)).toEqual([]);
  });

  it('should find the public routes under /v1 at all', () => {
    expect(documented.length).toBeGreaterThan(20);
    expect(documented).toEqual(
      expect.arrayContaining(['GET /v1/tasks/:id/decisions', 'GET /v1/supervisor/backlog']),
    );
  });
});
