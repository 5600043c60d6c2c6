/**
 * The demo trigger's fallback handler: a tiny HTTP endpoint in the demo's own process that the scheduler POSTs
 * the run to (docs/scheduler.md, "What a handler receives and returns") and that answers with a fixed output,
 * so the run ends `fallback` — the deterministic legacy job catching the agent's failure.
 */
import { createServer, type Server } from 'node:http';

export interface FallbackServer {
  /** The URL to register as the trigger's fallback. */
  url: string;
  /** Executions the handler served, by id. */
  served: Set<string>;
  close(): Promise<void>;
}

/** Listens on `host`, port chosen by the system. */
export async function startFallbackServer(host: string): Promise<FallbackServer> {
  const served = new Set<string>();
  const server: Server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => {
      // A demo handler reads a small JSON body; anything far larger is not the scheduler.
      if (body.length < 64 * 1024) body += chunk;
    });
    request.on('end', () => {
      let executionId = 'unknown';
      try {
        const parsed = JSON.parse(body) as { execution_id?: unknown };
        if (typeof parsed.execution_id === 'string') executionId = parsed.execution_id;
      } catch {
        // Not JSON: still answer, the scheduler decides what a run is.
      }
      served.add(executionId);
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({
          output: { served_by: 'warden-demo-fallback', report: 'nightly report (legacy job)' },
        }),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as { port: number };
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/fallback`,
    served,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
