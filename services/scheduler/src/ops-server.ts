import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createOpsHandler, type ReadinessCheck, type Registry } from '@warden/observability';
import type { SchedulerHealth } from './health.js';

export interface SchedulerOpsServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/**
 * `/healthz`, `/readyz` and `/metrics` as every service has them, plus `/health`: the scheduler's level
 * (`healthy` / `degraded` / `unhealthy`, 503 only for the last) with its reasons and the open breakers.
 */
export async function startSchedulerOpsServer(options: {
  port: number;
  host?: string;
  registry: Registry;
  readiness: Record<string, ReadinessCheck>;
  health: () => Promise<SchedulerHealth>;
}): Promise<SchedulerOpsServer> {
  const standard = createOpsHandler(options.registry, options.readiness);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const handled =
      path === '/health'
        ? options.health().then((health) => {
            res.writeHead(health.level === 'unhealthy' ? 503 : 200, { 'content-type': 'application/json' });
            res.end(JSON.stringify(health));
          })
        : standard(req, res);
    handled.catch(() => {
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
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
