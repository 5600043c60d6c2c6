import type { Server } from 'node:http';
import type { Express } from 'express';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger, RunnableService } from '@warden/observability';
import { createRedis, decisionStreamKey, pingRedis, type WardenQueues } from '@warden/queue';
import {
  egressGuardFromConfig,
  openRuntime,
  withBootstrap,
  type ActivePolicyStore,
  type ServiceRuntime,
} from '@warden/runtime';
import { randomBytes } from 'node:crypto';
import { createApp } from './app.js';
import { DecisionFeed } from './console/decision-feed.js';
import { SessionCodec } from './console/session.js';
import { DecisionWaiter } from './decision-waiter.js';
import { errorBody } from './http-errors.js';
import { createActivationAnnouncer, loadBootstrapPolicies } from './policy-changes.js';
import {
  createWriteGatePolicyStore,
  loadWriteGatePolicyFile,
  type ApiWriteGatePolicy,
} from './write-gate.js';
import { Notifier } from './notifications/notifier.js';
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
  /** Each tenant's active stored WriteGate version, once started. */
  writeGatePolicies(): ActivePolicyStore<'writegate', ApiWriteGatePolicy> | undefined;
}

/** The HTTP API: one express app over Postgres and the producer side of the queues. */
export function createApiService(config: Config, options: { logger?: Logger } = {}): ApiService {
  let runtime: ServiceRuntime | undefined;
  let server: Server | undefined;
  let expressApp: Express | undefined;
  let waiterConnection: ReturnType<typeof createRedis> | undefined;
  let decisionWaiter: DecisionWaiter | undefined;
  let consoleFeed: DecisionFeed | undefined;
  let notifier: Notifier | undefined;
  let writeGatePolicies: ActivePolicyStore<'writegate', ApiWriteGatePolicy> | undefined;

  return {
    port: () => (server?.address() as AddressInfo | null)?.port ?? 0,
    runtime: () => runtime,
    queues: () => runtime?.queues,
    app: () => expressApp,
    writeGatePolicies: () => writeGatePolicies,
    async start() {
      // The policy first: a bad file stops the API before it opens any connection.
      const writeGate = await loadWriteGatePolicyFile(config.WRITEGATE_POLICY_FILE);
      const bootstraps = await loadBootstrapPolicies({
        supervisor: config.SUPERVISOR_POLICY_FILE,
        writegate: config.WRITEGATE_POLICY_FILE,
        'lead-rules': config.LEAD_RULES_FILE,
      });
      runtime = await openRuntime({
        service: 'api',
        config,
        maxDbConnections: config.DB_POOL_SIZE,
        // Ingest must never wait on Redis: the event is durable in Postgres first, and the poller re-enqueues.
        queueConnectionRole: 'producer',
        ...(options.logger ? { logger: options.logger } : {}),
      });
      const queueConnection = runtime.queueConnection;
      writeGatePolicies = createWriteGatePolicyStore({
        db: runtime.db,
        logger: runtime.logger,
        // A connection of its own: a subscribed connection can do nothing else.
        subscriber: createRedis(config.REDIS_URL, 'general'),
        prefix: config.QUEUE_PREFIX,
        pollIntervalMs: config.POLICY_POLL_INTERVAL_MS,
      });
      await writeGatePolicies.start();
      // Its own connection: a blocking XREAD holds it. `worker` role: commands wait out a Redis restart.
      waiterConnection = createRedis(config.REDIS_URL, 'worker');
      decisionWaiter = new DecisionWaiter({
        redis: waiterConnection,
        streamKey: decisionStreamKey(config.QUEUE_PREFIX),
        logger: runtime.logger,
      });
      // The console's live inbox: one reader of the decision stream, on a connection of its own, opened on first use.
      consoleFeed = new DecisionFeed({
        connect: () => createRedis(config.REDIS_URL, 'worker'),
        prefix: config.QUEUE_PREFIX,
        logger: runtime.logger,
      });
      const webConsole = {
        session: new SessionCodec({
          secret: config.CONSOLE_SESSION_SECRET ?? randomBytes(32).toString('hex'),
          ttlMs: config.CONSOLE_SESSION_TTL_MS,
          secureCookies: config.CONSOLE_SECURE_COOKIES,
        }),
        feed: consoleFeed,
      };
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
        writeGate: withBootstrap(writeGatePolicies, writeGate),
        bullBoardReadOnly: config.BULL_BOARD_READ_ONLY,
        decisionWaiter,
        webConsole,
        policies: {
          bootstraps,
          announce: createActivationAnnouncer(runtime.redis, config.QUEUE_PREFIX, runtime.logger),
        },
      });
      expressApp = app;
      if (config.NOTIFIER_ENABLED) {
        notifier = new Notifier({
          db: runtime.db,
          queues: runtime.queues,
          workerConnection: runtime.workerConnection(),
          prefix: config.QUEUE_PREFIX,
          logger: runtime.logger,
          intervalMs: config.NOTIFIER_INTERVAL_MS,
          maxAttempts: config.NOTIFIER_MAX_ATTEMPTS,
          backoffMs: config.NOTIFIER_BACKOFF_MS,
          timeoutMs: config.NOTIFIER_TIMEOUT_MS,
          consoleBaseUrl: config.PUBLIC_BASE_URL,
          egress: egressGuardFromConfig(config),
        });
        notifier.start();
      }
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
      // First: it ends the console's open event streams, which would otherwise hold the server open.
      await consoleFeed?.close();
      consoleFeed = undefined;
      if (current) {
        await new Promise<void>((resolve) => {
          current.close(() => resolve());
          // In-flight requests get a moment; idle keep-alive sockets are closed at once.
          current.closeIdleConnections();
          setTimeout(() => current.closeAllConnections(), 5000).unref();
        });
      }
      await notifier?.stop();
      notifier = undefined;
      await writeGatePolicies?.stop();
      writeGatePolicies = undefined;
      decisionWaiter?.stop();
      waiterConnection?.disconnect();
      decisionWaiter = undefined;
      waiterConnection = undefined;
      await runtime?.close();
      runtime = undefined;
    },
  };
}
