import type { ErrorRequestHandler, RequestHandler } from 'express';
import {
  ChangeSetStateError,
  ChecksumMismatchError,
  CompareAndSwapError,
  ConcurrentExecutionError,
  ForbiddenPathError,
  IdempotencyConflictError,
  SelfApprovalError,
  StaleLockError,
  WriteGateDeniedError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  UnauthorizedError,
  ValidationError,
  WardenError,
  type ErrorDetail,
} from '@warden/domain';
import type { Logger } from '@warden/observability';

/** The one place where error classes become HTTP statuses. */
function statusOf(error: WardenError): number {
  if (error instanceof ValidationError) return 400;
  if (error instanceof UnauthorizedError) return 401;
  if (error instanceof ForbiddenError) return 403;
  if (error instanceof NotFoundError) return 404;
  if (error instanceof ConflictError) return 409;
  // The change-set path's own errors (packages/domain/src/executor/executor-errors.ts).
  if (error instanceof ChecksumMismatchError) return 400;
  if (error instanceof ForbiddenPathError || error instanceof WriteGateDeniedError || error instanceof SelfApprovalError) return 403;
  if (
    error instanceof ChangeSetStateError ||
    error instanceof IdempotencyConflictError ||
    error instanceof ConcurrentExecutionError ||
    error instanceof CompareAndSwapError ||
    error instanceof StaleLockError
  )
    return 409;
  return 500;
}

interface ErrorBody {
  error: { code: string; message: string; details: ErrorDetail[] };
}

function body(code: string, message: string, details: ErrorDetail[] = []): ErrorBody {
  return { error: { code, message, details } };
}

/** body-parser's own errors carry a `type`; they are the client's fault, not ours. */
function bodyParserError(error: unknown): { status: number; body: ErrorBody } | undefined {
  const type = (error as { type?: unknown }).type;
  if (type === 'entity.too.large') {
    const limit = (error as { limit?: number }).limit;
    return { status: 413, body: body('payload_too_large', `request body is larger than the limit${limit ? ` of ${limit} bytes` : ''}`) };
  }
  if (type === 'entity.parse.failed') {
    return { status: 400, body: body('invalid_json', 'request body is not valid JSON', [{ path: '(root)', message: (error as Error).message }]) };
  }
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return { status: 415, body: body('unsupported_encoding', (error as Error).message) };
  }
  if (typeof type === 'string' && typeof (error as { status?: unknown }).status === 'number') {
    const status = (error as { status: number }).status;
    if (status >= 400 && status < 500) return { status, body: body('bad_request', (error as Error).message) };
  }
  return undefined;
}

/**
 * Turns any error into `{ error: { code, message, details } }`. Client errors keep their message; anything
 * unexpected is logged with its stack and answered with a generic 500 — never a stack trace on the wire.
 */
export function errorMiddleware(logger: Logger): ErrorRequestHandler {
  return (error, req, res, _next) => {
    const parserError = bodyParserError(error);
    if (parserError) {
      res.status(parserError.status).json(parserError.body);
      return;
    }
    if (error instanceof WardenError) {
      const status = statusOf(error);
      if (status === 401 && !res.hasHeader('www-authenticate')) res.setHeader('www-authenticate', 'Bearer');
      res.status(status).json(body(error.code, error.message, error.details));
      return;
    }
    logger.error({ module: 'http', action: 'request', status: 'error', method: req.method, path: req.path, err: error }, 'unhandled error');
    res.status(500).json(body('internal', 'internal error; the request was logged'));
  };
}

export const notFoundRoute: RequestHandler = (req, _res, next) => {
  next(new NotFoundError(`no route ${req.method} ${req.path}`));
};
