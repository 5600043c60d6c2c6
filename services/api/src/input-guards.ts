/**
 * Guards every request passes before any route sees it, so that no input — however malformed — reaches
 * Postgres or a recursive reader and comes back as a 500. Each refusal is a 4xx in the one error shape,
 * naming the location: `(path)`, a query parameter, `headers.<name>`, or a path in the body.
 *
 * Limits (also in README, "The HTTP API"): JSON bodies nest at most MAX_JSON_DEPTH (64) levels and are at most
 * MAX_BODY bytes; no string or key anywhere (path, query, body) may hold NUL or a lone UTF-16 surrogate;
 * each query parameter is given at most once; a body must be JSON.
 */
import type { Request, RequestHandler } from 'express';
import { MAX_JSON_DEPTH, ValidationError, assertStorableJson, unstorableTextProblem } from '@warden/domain';
import { errorBody } from './http-errors.js';

/**
 * Refuses a path that does not percent-decode (`/v1/tasks/%E0%A4%A`) or decodes to NUL (`/v1/tasks/a%00b`)
 * before routing, for every route alike — the router would otherwise throw while matching it, and a NUL would
 * reach SQL in a path parameter.
 */
export const refuseMalformedPath: RequestHandler = (req, _res, next) => {
  const segments = req.path.split('/');
  for (const [index, segment] of segments.entries()) {
    if (!segment.includes('%')) continue;
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw pathError(`segment ${index} "${segment}" is not valid percent-encoded UTF-8`);
    }
    const problem = unstorableTextProblem(decoded);
    if (problem) throw pathError(`segment ${index} "${segment}" ${problem}`);
  }
  next();
};

function pathError(message: string): ValidationError {
  return new ValidationError(`invalid path: ${message}`, [{ path: '(path)', message }]);
}

/**
 * Refuses a query parameter given more than once (`?limit=1&limit=2` would reach a schema as an array) and
 * query text Postgres cannot store. The message names the parameter, as the routes' own query errors do.
 */
export const refuseHostileQuery: RequestHandler = (req, _res, next) => {
  const details: Array<{ path: string; message: string }> = [];
  for (const [name, value] of Object.entries(req.query as Record<string, unknown>)) {
    const nameProblem = unstorableTextProblem(name);
    if (nameProblem) {
      details.push({ path: JSON.stringify(name), message: `parameter name ${nameProblem}` });
      continue;
    }
    if (Array.isArray(value)) {
      details.push({ path: name, message: `is given ${value.length} times; send it once` });
      continue;
    }
    const problem = typeof value === 'string' ? unstorableTextProblem(value) : undefined;
    if (problem) details.push({ path: name, message: problem });
  }
  if (details.length > 0) {
    throw new ValidationError(
      `invalid query: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`,
      details,
    );
  }
  next();
};

function hasBody(req: Request): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && length !== '0';
}

/**
 * A request body must be JSON. One sent as anything else (or with a Content-Type that does not parse) would be
 * skipped by the JSON parser and the route would run as if no body had been sent — a silently dropped note
 * or reason. 415 instead, naming the header.
 */
export const requireJsonBody: RequestHandler = (req, res, next) => {
  if (!hasBody(req) || req.is(['application/json', 'application/*+json'])) {
    next();
    return;
  }
  const sent = req.headers['content-type'];
  const message =
    sent === undefined
      ? 'a request body needs "Content-Type: application/json"'
      : `"${sent}" is not JSON; send "Content-Type: application/json"`;
  res
    .status(415)
    .json(errorBody('unsupported_media_type', message, [{ path: 'headers.content-type', message }]));
};

/**
 * Walks the parsed JSON body (iteratively) and refuses it when it nests deeper than {@link MAX_JSON_DEPTH} or
 * holds a string or key Postgres cannot store. `allowNul(req)` exempts a route from the NUL check only: the
 * change-set submission carries file paths and contents, where a NUL is data — the WriteGate denies a NUL
 * path and the change set is stored as escaped JSON text (docs/executor.md).
 */
export function refuseHostileBody(allowNul: (req: Request) => boolean = () => false): RequestHandler {
  return (req, _res, next) => {
    if (req.body !== undefined)
      assertStorableJson(req.body, 'request body', { maxDepth: MAX_JSON_DEPTH, nul: !allowNul(req) });
    next();
  };
}
