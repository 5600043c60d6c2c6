import { randomBytes } from 'node:crypto';
import express, { type Express, type Request, type RequestHandler, type Response } from 'express';
import type { Db } from '@warden/db';
import {
  SpanKind,
  captureContext,
  contextFromHeaders,
  contextWithSpan,
  createOpsHandler,
  markSpanFailed,
  runInContext,
  startSpan,
  tracingEnabled,
  type Logger,
  type ReadinessCheck,
  type Registry,
} from '@warden/observability';
import type { WardenQueues } from '@warden/queue';
import type { TenantPolicySource } from '@warden/runtime';
import { authenticate } from './auth.js';
import { bullBoardRouter, conformBullBoardErrors } from './bull-board.js';
import { authenticateOperator } from './operator-auth.js';
import {
  API_PREFIX,
  ROUTE_TEMPLATE,
  labelDeclaredRoutes,
  mountRoutes,
  type ApiDeps,
} from './define-route.js';
import { errorMiddleware, notFoundRoute } from './http-errors.js';
import {
  refuseHostileBody,
  refuseHostileQuery,
  refuseMalformedPath,
  requireJsonBody,
} from './input-guards.js';
import type { DecisionWaiter } from './decision-waiter.js';
import { consoleRouter } from './console/router.js';
import type { DecisionFeed } from './console/decision-feed.js';
import { CONSOLE_PATH, SessionCodec } from './console/session.js';
import { createApiMetrics } from './metrics.js';
import { buildOpenApiDocument } from './openapi.js';
import { API_ROUTES } from './routes/index.js';
import type { ApiPolicyDeps } from './policy-changes.js';
import type { ApiWriteGatePolicy } from './write-gate.js';
import { createEventIngester } from './event-ingester.js';

export interface AppOptions {
  db: Db;
  queues: WardenQueues;
  logger: Logger;
  registry: Registry;
  /** Dependencies `/readyz` requires (Postgres, migrations). */
  readiness: Record<string, ReadinessCheck>;
  /** Dependencies `/readyz` reports but does not require (Redis: ingest goes on without it). */
  informational: Record<string, ReadinessCheck>;
  /** Largest JSON body. @defaultValue `5mb` */
  maxBody?: string;
  /** @defaultValue `500` */
  enqueueTimeoutMs?: number;
  /** @defaultValue `10000` */
  authCacheTtlMs?: number;
  /** The WriteGate policy a tenant's change sets are gated with: its active stored version, else the file. */
  writeGate: TenantPolicySource<ApiWriteGatePolicy>;
  /** Wakes `Prefer: wait` requests on the decision stream. @defaultValue none: the preference is ignored */
  decisionWaiter?: DecisionWaiter;
  /** The stored policies' bootstrap versions and how an activation is announced. */
  policies: ApiPolicyDeps;
  /** Bull Board shows queues and jobs but changes nothing. @defaultValue `true` */
  bullBoardReadOnly?: boolean;
  /**
   * The console at `/console`: its session codec and live decision feed.
   * @defaultValue a codec with a random per-process secret and no live feed
   */
  webConsole?: { session: SessionCodec; feed?: DecisionFeed };
}

export const BULL_BOARD_PATH = '/admin/queues';

/**
 * The express application: the declared routes (routes/, each one `defineRoute`) under `/v1` behind the input
 * guards and authentication, the OpenAPI document built from the same declarations, Bull Board, the ops
 * endpoints and the one error handler.
 */
export function createApp(options: AppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const metrics = createApiMetrics(options.registry);

  // With tracing on (OTEL_* variables), each request is a server span that continues the caller's `traceparent`.
  if (tracingEnabled()) app.use(requestTracing);
  app.use(requestLogging(options.logger, metrics.requestDuration));
  // Before any route, Bull Board included: no path or query Postgres cannot take gets further than this.
  app.use(refuseMalformedPath, refuseHostileQuery);

  const ops = createOpsHandler(options.registry, options.readiness, options.informational);
  app.get(['/healthz', '/readyz', '/metrics'], (req, res) => ops(req, res));
  const openApiDocument = buildOpenApiDocument();
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });

  // Bull Board spans every tenant's queues: a platform operator's key only (never a tenant's admin key), and
  // read-only unless BULL_BOARD_READ_ONLY=false.
  const bullBoard = bullBoardRouter({
    queues: options.queues,
    db: options.db,
    basePath: BULL_BOARD_PATH,
    readOnly: options.bullBoardReadOnly ?? true,
  });
  app.use(
    BULL_BOARD_PATH,
    authenticateOperator({ db: options.db, realm: 'Warden Bull Board' }),
    conformBullBoardErrors,
    bullBoard.guardReadOnly,
    bullBoard.refresh,
    bullBoard.handle,
  );
  // express hides a mounted sub-application behind a wrapper; kept here so the route fuzz test reaches its routes too.
  app.locals.mountedApps = [
    {
      path: BULL_BOARD_PATH,
      get app() {
        return bullBoard.router();
      },
    },
  ];

  const v1 = express.Router();
  v1.use(labelDeclaredRoutes(API_PREFIX, API_ROUTES));
  v1.use(requireJsonBody);
  v1.use(express.json({ limit: options.maxBody ?? '5mb', type: ['application/json', 'application/*+json'] }));
  // Non-strict, case-insensitive routing also serves `/Changesets/`: compare as the router would match.
  v1.use(
    refuseHostileBody(
      (req) => req.method === 'POST' && req.path.toLowerCase().replace(/\/+$/, '') === '/changesets',
    ),
  );
  v1.use(authenticate({ db: options.db, cacheTtlMs: options.authCacheTtlMs ?? 10_000 }));
  const enqueueTimeoutMs = options.enqueueTimeoutMs ?? 500;
  const deps: ApiDeps = {
    db: options.db,
    queues: options.queues,
    logger: options.logger,
    metrics,
    writeGate: options.writeGate,
    ingestEvents: createEventIngester({
      db: options.db,
      queues: options.queues,
      logger: options.logger,
      enqueueTimeoutMs,
      onEnqueueDeferred: (count) => metrics.enqueueFailures.inc(count),
    }),
    enqueueTimeoutMs,
    ...(options.decisionWaiter ? { decisionWaiter: options.decisionWaiter } : {}),
    policies: options.policies,
  };
  mountRoutes(v1, API_PREFIX, API_ROUTES, deps);
  app.use(API_PREFIX, v1);

  // The console acts through the same declared routes, so its scope checks and audits are the API's.
  const webConsole = options.webConsole ?? {
    session: new SessionCodec({ secret: randomBytes(32).toString('hex') }),
  };
  app.use(
    CONSOLE_PATH,
    consoleRouter({
      deps,
      routes: API_ROUTES,
      session: webConsole.session,
      ...(webConsole.feed ? { feed: webConsole.feed } : {}),
    }),
  );

  app.use(notFoundRoute);
  app.use(errorMiddleware(options.logger));
  return app;
}

/**
 * The route label of a request's metrics: the declared route's template (`/v1/tasks/:id`, whatever the answer,
 * errors included), else the pattern express matched, else the surface it reached (`/console`, `/admin/queues`),
 * else `unmatched` — bounded whatever paths clients send.
 */
export function routeLabel(req: Request, res: Response): string {
  const declared = res.locals[ROUTE_TEMPLATE] as string | undefined;
  if (declared) return declared;
  if (req.route?.path) return `${req.baseUrl}${req.route.path as string}`;
  const path = (req.originalUrl ?? req.url).split('?')[0]!.toLowerCase();
  const surface = ['/console', '/admin/queues'].find(
    (prefix) => path === prefix || path.startsWith(`${prefix}/`),
  );
  return surface ?? 'unmatched';
}

/**
 * The request's server span: named by method and route template once the route is known (bounded, like the
 * metrics' label), continuing the caller's trace when it sent a W3C `traceparent`; everything the request does
 * (inserts, enqueues, log lines) runs inside it.
 */
const requestTracing: RequestHandler = (req, res, next) => {
  const parent = contextFromHeaders(req.headers);
  const span = startSpan(req.method, {
    kind: SpanKind.SERVER,
    parent,
    attributes: { 'http.request.method': req.method, 'url.path': req.path },
  });
  if (!span) return next();
  res.once('close', () => {
    const route = routeLabel(req, res);
    span.updateName(`${req.method} ${route}`);
    span.setAttributes({ 'http.route': route, 'http.response.status_code': res.statusCode });
    if (res.statusCode >= 500) markSpanFailed(span);
    span.end();
  });
  runInContext(contextWithSpan(parent, span), next);
};

function requestLogging(
  logger: Logger,
  histogram: ReturnType<typeof createApiMetrics>['requestDuration'],
): RequestHandler {
  const log = logger.child({ module: 'http' });
  return (req, res, next) => {
    const started = performance.now();
    // The line is written after the reply, outside the request's call chain: put its span back for the mixin.
    const traceContext = captureContext();
    res.on('finish', () =>
      runInContext(traceContext, () => {
        const latency = performance.now() - started;
        const route = routeLabel(req, res);
        histogram.observe({ method: req.method, route, status: String(res.statusCode) }, latency / 1000);
        const level = res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'info' : 'debug';
        // A 2xx is logged at debug, which production does not write: then no line is built per request.
        if (!log.isLevelEnabled(level)) return;
        log[level](
          {
            action: 'request',
            status: res.statusCode,
            method: req.method,
            path: req.path,
            latency_ms: Math.round(latency * 10) / 10,
            // A caller's own correlation id, when it sent one; else the request's trace id (tracing on).
            ...(req.headers['x-trace-id'] ? { trace_id: req.headers['x-trace-id'] } : {}),
          },
          `${req.method} ${req.path} ${res.statusCode}`,
        );
      }),
    );
    next();
  };
}
