import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { runReadinessChecks, type ReadinessCheck } from './readiness.js';

export interface OpsServerOptions {
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** Interface to bind. @defaultValue `0.0.0.0` */
  host?: string;
  registry: Registry;
  /** Dependencies `/readyz` requires (Redis, Postgres, migrations…). */
  readiness: Record<string, ReadinessCheck>;
  /** Dependencies `/readyz` reports without failing on them (the API keeps accepting events while Redis is away). */
  informational?: Record<string, ReadinessCheck>;
  /** A service's own JSON endpoints by path (the scheduler's `/health`). @defaultValue none */
  routes?: Record<string, OpsRoute>;
}

/** A service's own ops endpoint: answers with a status and a JSON body. */
export type OpsRoute = () => Promise<{ status: number; body: unknown }>;

export interface OpsServer {
  server: Server;
  /** The port actually bound. */
  port: number;
  close(): Promise<void>;
}

/**
 * The operations endpoints every service has: `/healthz` (the process is alive), `/readyz` (its dependencies
 * answer; 503 with each failing check otherwise) and `/metrics` (Prometheus text format).
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const handler = createOpsHandler(
    options.registry,
    options.readiness,
    options.informational,
    options.routes,
  );
  const server = createServer((req, res) => {
    handler(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":{"code":"internal","message":"ops endpoint failed"}}');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The request handler behind {@link startOpsServer}; the API mounts the same paths on express. */
export function createOpsHandler(
  registry: Registry,
  readiness: Record<string, ReadinessCheck>,
  informational: Record<string, ReadinessCheck> = {},
  routes: Record<string, OpsRoute> = {},
) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (route) {
      const { status, body } = await route();
      sendJson(res, status, body);
    } else if (path === '/healthz') {
      sendJson(res, 200, { status: 'ok' });
    } else if (path === '/readyz') {
      const [report, info] = await Promise.all([
        runReadinessChecks(readiness),
        runReadinessChecks(informational),
      ]);
      const degraded = report.ready && !info.ready;
      sendJson(res, report.ready ? 200 : 503, {
        status: report.ready ? (degraded ? 'degraded' : 'ready') : 'not_ready',
        checks: [...report.checks, ...info.checks.map((check) => ({ ...check, required: false }))],
      });
    } else if (path === '/metrics') {
      const body = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(body);
    } else {
      sendJson(res, 404, { error: { code: 'not_found', message: `no route ${path}`, details: [] } });
    }
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
