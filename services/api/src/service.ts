import type { Server } from 'node:http';
import type { Express } from 'express';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger, RunnableService } from '@warden/observability';
import { pingRedis, type WardenQueues } from '@warden/queue';
import { openRuntime, type ServiceRuntime } from '@warden/runtime';
import { createApp } from './app.js';
import { errorBody } from './http-errors.js';
import { loadWriteGatePolicyFile } from './write-gate.js';
import type { Config } from './config.js';

/**
 * A request Node's HTTP parser refused before express saw it (a URL or headers over 16 KB, a malformed request
 * line or header): answered in the one error shape rather than Node's bare status line.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason, code, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [
          431,
          'Request Header Fields Too Large',
          'headers_too_large',
          'the request line and headers are larger than 16 KB',
        ]
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'request_timeout', 'the request was not received in time']
        : [
            400,
            'Bad Request',
            'bad_request',
            `the request is not valid HTTP (${error.code ?? 'parse error'})`,
          ];
  const body = JSON.stringify(errorBody(code, message, [{ path: '(request)', message }]));
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export interface ApiService extends RunnableService {
  /** The bound port once started (useful with PORT=0). */
  port(): number;
  runtime(): ServiceRuntime | undefined;
  queues(): WardenQueues | undefined;
  /** The express application once started: tests walk its router to reach every route that is served. */
  app(): Express | undefined;
}

/** The HTTP API: one express app over Postgres and the producer side of the queues. */
export function createApiService(config: Config, options: { logger?: Logger } = {}): ApiService {
  let runtime: ServiceRuntime | undefined;
  let server: Server | undefined;
  let expressApp: Express | undefined;

  return {
    port: () => (server?.address() as AddressInfo | null)?.port ?? 0,
    runtime: () => runtime,
    queues: () => runtime?.queues,
    app: () => expressApp,
    async start() {
      // The policy first: a bad file stops the API before it opens any connection.
      const writeGate = await loadWriteGatePolicyFile(config.WRITEGATE_POLICY_FILE);
      runtime = await openRuntime({
        service: 'api',
        config,
        maxDbConnections: config.DB_POOL_SIZE,
        // Ingest must never wait on Redis: the event is durable in Postgres first, and the poller re-enqueues.
        queueConnectionRole: 'producer',
        ...(options.logger ? { logger: options.logger } : {}),
      });
      const queueConnection = runtime.queueConnection;
      const app = createApp({
        db: runtime.db,
        queues: runtime.queues,
        logger: runtime.logger,
        registry: runtime.registry,
        readiness: { postgres: runtime.readiness.postgres!, migrations: runtime.readiness.migrations! },
        informational: { redis: () => pingRedis(queueConnection) },
        maxBody: config.MAX_BODY,
        enqueueTimeoutMs: config.ENQUEUE_TIMEOUT_MS,
        authCacheTtlMs: config.AUTH_CACHE_TTL_MS,
        writeGate,
      });
      expressApp = app;
      const listening = app.listen(config.PORT, config.HOST);
      server = listening;
      listening.on('clientError', answerClientError);
      await new Promise<void>((resolve, reject) => {
        listening.once('listening', resolve);
        listening.once('error', reject);
      });
      // Keep-alive longer than typical load balancers' idle timeout, so they close first.
      listening.keepAliveTimeout = 65_000;
      runtime.logger.info(
        { module: 'lifecycle', action: 'start', status: 'ok', port: this.port() },
        `api listening on :${this.port()}`,
      );
    },
    async stop() {
      const current = server;
      server = undefined;
      expressApp = undefined;
      if (current) {
        await new Promise<void>((resolve) => {
          current.close(() => resolve());
          // In-flight requests get a moment; idle keep-alive sockets are closed at once.
          current.closeIdleConnections();
          setTimeout(() => current.closeAllConnections(), 5000).unref();
        });
      }
      await runtime?.close();
      runtime = undefined;
    },
  };
}
