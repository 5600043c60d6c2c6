import express, { type Express, type RequestHandler } from 'express';
import type { Db } from '@warden/db';
import { createOpsHandler, type Logger, type ReadinessCheck, type Registry } from '@warden/observability';
import type { WardenQueues } from '@warden/queue';
import { authenticate, requireScope } from './auth.js';
import { bullBoardRouter, conformBullBoardErrors } from './bull-board.js';
import { API_PREFIX, mountRoutes } from './define-route.js';
import { errorMiddleware, notFoundRoute } from './http-errors.js';
import {
  refuseHostileBody,
  refuseHostileQuery,
  refuseMalformedPath,
  requireJsonBody,
} from './input-guards.js';
import { createApiMetrics } from './metrics.js';
import { buildOpenApiDocument } from './openapi.js';
import { API_ROUTES } from './routes/index.js';
import type { ApiWriteGatePolicy } from './write-gate.js';

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
  /** The WriteGate policy change sets are gated with, loaded and validated at start-up. */
  writeGate: ApiWriteGatePolicy;
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

  app.use(requestLogging(options.logger, metrics.requestDuration));
  // Before any route, Bull Board included: no path or query Postgres cannot take gets further than this.
  app.use(refuseMalformedPath, refuseHostileQuery);

  const ops = createOpsHandler(options.registry, options.readiness, options.informational);
  app.get(['/healthz', '/readyz', '/metrics'], (req, res) => ops(req, res));
  const openApiDocument = buildOpenApiDocument();
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });

  const bullBoard = bullBoardRouter(options.queues, BULL_BOARD_PATH);
  app.use(
    BULL_BOARD_PATH,
    authenticate({
      db: options.db,
      cacheTtlMs: options.authCacheTtlMs ?? 10_000,
      allowBasic: true,
      realm: 'Warden Bull Board',
    }),
    requireScope('admin'),
    conformBullBoardErrors,
    bullBoard,
  );
  // express hides a mounted sub-application behind a wrapper; kept here so the route fuzz test reaches its routes too.
  app.locals.mountedApps = [{ path: BULL_BOARD_PATH, app: bullBoard }];

  const v1 = express.Router();
  v1.use(requireJsonBody);
  v1.use(express.json({ limit: options.maxBody ?? '5mb', type: ['application/json', 'application/*+json'] }));
  // Non-strict, case-insensitive routing also serves `/Changesets/`: compare as the router would match.
  v1.use(
    refuseHostileBody(
      (req) => req.method === 'POST' && req.path.toLowerCase().replace(/\/+$/, '') === '/changesets',
    ),
  );
  v1.use(authenticate({ db: options.db, cacheTtlMs: options.authCacheTtlMs ?? 10_000 }));
  mountRoutes(v1, API_PREFIX, API_ROUTES, {
    db: options.db,
    queues: options.queues,
    logger: options.logger,
    metrics,
    writeGate: options.writeGate,
    enqueueTimeoutMs: options.enqueueTimeoutMs ?? 500,
  });
  app.use(API_PREFIX, v1);

  app.use(notFoundRoute);
  app.use(errorMiddleware(options.logger));
  return app;
}

function requestLogging(
  logger: Logger,
  histogram: ReturnType<typeof createApiMetrics>['requestDuration'],
): RequestHandler {
  const log = logger.child({ module: 'http' });
  return (req, res, next) => {
    const started = performance.now();
    res.on('finish', () => {
      const latency = performance.now() - started;
      // The matched route pattern keeps label cardinality bounded; unmatched paths collapse into one label.
      const route = (req.route?.path as string | undefined)
        ? `${req.baseUrl}${req.route.path}`
        : req.baseUrl || 'unmatched';
      histogram.observe({ method: req.method, route, status: String(res.statusCode) }, latency / 1000);
      const level = res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'info' : 'debug';
      log[level](
        {
          action: 'request',
          status: res.statusCode,
          method: req.method,
          path: req.path,
          latency_ms: Math.round(latency * 10) / 10,
          trace_id: req.headers['x-trace-id'],
        },
        `${req.method} ${req.path} ${res.statusCode}`,
      );
    });
    next();
  };
}
