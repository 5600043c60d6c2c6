import type { ErrorRequestHandler, RequestHandler } from 'express';
import { NotFoundError, WardenError, type ErrorDetail } from '@warden/domain';
import type { Logger } from '@warden/observability';
import { DependencyUnavailableError, asDependencyUnavailable } from '@warden/runtime';

/**
 * `Retry-After` (seconds) of every 503: long enough for a Postgres restart or a Redis failover to finish, short
 * enough that a client's retry lands soon after.
 */
export const RETRY_AFTER_SECONDS = 5;

/** A Warden error's status comes from the one table of outcomes (ERROR_OUTCOMES in @warden/domain). */
function statusOf(error: WardenError): number {
  return error.httpStatus;
}

export interface ErrorBody {
  error: { code: string; message: string; details: ErrorDetail[] };
}

export function errorBody(code: string, message: string, details: ErrorDetail[] = []): ErrorBody {
  return { error: { code, message, details } };
}

/** A client error: the status to answer, and the one error shape. */
export interface ClientErrorReply {
  status: number;
  body: ErrorBody;
}

const CONTENT_ENCODING = 'headers.content-encoding';
const CONTENT_TYPE = 'headers.content-type';

/**
 * Errors thrown before a route runs — by body-parser (and the raw-body and zlib streams under it) or by the
 * router decoding a path parameter — that are the client's doing. Each becomes a 4xx naming the header or
 * location at fault; anything not recognised here stays a 500.
 */
export function clientErrorOf(error: unknown): ClientErrorReply | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  const { type, status, statusCode } = error as { type?: unknown; status?: unknown; statusCode?: unknown };
  const message = error instanceof Error ? error.message : String(error);
  const httpStatus =
    typeof status === 'number' ? status : typeof statusCode === 'number' ? statusCode : undefined;
  if (type === 'entity.too.large') {
    const limit = (error as { limit?: number }).limit;
    const text = `request body is larger than the limit${limit ? ` of ${limit} bytes` : ''}`;
    return { status: 413, body: errorBody('payload_too_large', text, [{ path: '(root)', message: text }]) };
  }
  if (type === 'entity.parse.failed') {
    // The JSON reader takes objects and arrays only: `null`, `42` or `"x"` are JSON, just not a request.
    const text = isJsonScalar((error as { body?: unknown }).body)
      ? 'request body must be a JSON object'
      : 'request body is not valid JSON';
    return {
      status: 400,
      body: errorBody('invalid_json', text, [{ path: '(root)', message }]),
    };
  }
  if (type === 'encoding.unsupported') {
    return {
      status: 415,
      body: errorBody('unsupported_encoding', message, [
        { path: CONTENT_ENCODING, message: 'send identity, gzip, deflate or br' },
      ]),
    };
  }
  if (type === 'charset.unsupported') {
    return {
      status: 415,
      body: errorBody('unsupported_encoding', message, [
        { path: CONTENT_TYPE, message: 'JSON is read as UTF-8; send charset=utf-8 or none' },
      ]),
    };
  }
  // A body that claims gzip/deflate/br but does not decompress: body-parser wraps zlib's error as a 400
  // without a `type`; the zlib code (Z_DATA_ERROR, ERR_BROTLI_…, ERR__ERROR_FORMAT_PADDING_1…) says what it was.
  const code = (error as { code?: unknown }).code;
  if (
    httpStatus === 400 &&
    type === undefined &&
    typeof code === 'string' &&
    /^(Z_|ERR_BROTLI|ERR__|ERR_ZSTD)/.test(code)
  ) {
    const text = `request body does not decode as its Content-Encoding says: ${message}`;
    return {
      status: 400,
      body: errorBody('invalid_encoding', text, [{ path: CONTENT_ENCODING, message: text }]),
    };
  }
  // The router could not percent-decode a path parameter (`/v1/tasks/%E0%A4%A`): it marks the URIError 400.
  if (error instanceof URIError) {
    const text = `the path is not valid percent-encoded UTF-8: ${message}`;
    return { status: 400, body: errorBody('invalid_path', text, [{ path: '(path)', message: text }]) };
  }
  // Any other http-errors 4xx (request.aborted, request.size.invalid, …) keeps its status and message.
  if (
    httpStatus !== undefined &&
    httpStatus >= 400 &&
    httpStatus < 500 &&
    (type !== undefined || (error as { expose?: unknown }).expose === true)
  ) {
    return { status: httpStatus, body: errorBody('bad_request', message, [{ path: '(request)', message }]) };
  }
  return undefined;
}

/**
 * Turns any error into `{ error: { code, message, details } }`. Client errors keep their message; anything
 * unexpected is logged with its stack and answered with a generic 500 — never a stack trace on the wire.
 */
export function errorMiddleware(logger: Logger): ErrorRequestHandler {
  return (error, req, res, next) => {
    // Past the first byte of a reply there is nothing to correct; express closes the connection.
    if (res.headersSent) {
      next(error);
      return;
    }
    const clientError = clientErrorOf(error);
    if (clientError) {
      res.status(clientError.status).json(clientError.body);
      return;
    }
    // Postgres or Redis away (a restart, a failover, a dropped connection): 503 and come back later, not a 500.
    const unavailable =
      error instanceof WardenError && !(error instanceof DependencyUnavailableError)
        ? undefined
        : asDependencyUnavailable(error);
    if (unavailable) {
      logger.warn(
        {
          module: 'http',
          action: 'request',
          status: 'unavailable',
          method: req.method,
          path: req.path,
          dependency: unavailable.dependency,
          err: error,
        },
        unavailable.message,
      );
      res.setHeader('retry-after', String(RETRY_AFTER_SECONDS));
      res.status(503).json(errorBody(unavailable.code, unavailable.message));
      return;
    }
    if (error instanceof WardenError) {
      const status = statusOf(error);
      if (status === 401 && !res.hasHeader('www-authenticate')) res.setHeader('www-authenticate', 'Bearer');
      if (status === 503 && !res.hasHeader('retry-after'))
        res.setHeader('retry-after', String(RETRY_AFTER_SECONDS));
      // Warden's own faults (a 5xx) are logged as such; the caller gets the code and message, never a stack.
      if (status >= 500)
        logger.error(
          {
            module: 'http',
            action: 'request',
            status: 'error',
            method: req.method,
            path: req.path,
            err: error,
          },
          error.message,
        );
      res.status(status).json(errorBody(error.code, error.message, error.details));
      return;
    }
    logger.error(
      { module: 'http', action: 'request', status: 'error', method: req.method, path: req.path, err: error },
      'unhandled error',
    );
    res.status(500).json(errorBody('internal', 'internal error; the request was logged'));
  };
}

export const notFoundRoute: RequestHandler = (req, _res, next) => {
  next(new NotFoundError(`no route ${req.method} ${req.path}`));
};

function isJsonScalar(body: unknown): boolean {
  if (typeof body !== 'string') return false;
  try {
    const value: unknown = JSON.parse(body);
    return value === null || typeof value !== 'object';
  } catch {
    return false;
  }
}
