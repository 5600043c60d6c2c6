/**
 * One declaration per HTTP endpoint. {@link defineRoute} takes the method, the path, the scope, the zod
 * schemas of the inputs and the documented responses, plus a handler; from that one value the API both
 * serves the route ({@link mountRoutes}) and describes it in `/openapi.json` (openapi.ts), so the two
 * cannot drift apart.
 */
import type { Request, RequestHandler, Response, Router } from 'express';
import type { z } from 'zod';
import type { Db } from '@warden/db';
import { ValidationError, parseOrThrow, type Scope } from '@warden/domain';
import type { Logger } from '@warden/observability';
import type { WardenQueues } from '@warden/queue';
import type { TenantPolicySource } from '@warden/runtime';
import { assertAnyScope, authOf, type AuthContext } from './auth.js';
import type { DecisionWaiter } from './decision-waiter.js';
import type { ApiMetrics } from './metrics.js';
import type { ApiPolicyDeps } from './policy-changes.js';
import type { ApiWriteGatePolicy } from './write-gate.js';
import type { EventIngester } from './event-ingester.js';

/** Every public route lives under this prefix; express mounts them there behind authentication. */
export const API_PREFIX = '/v1';

/** What the handlers work with: one set for the whole API, built once by the app. */
export interface ApiDeps {
  db: Db;
  queues: WardenQueues;
  logger: Logger;
  metrics: ApiMetrics;
  /** The WriteGate policy a tenant's change sets are gated with: its active stored version, else the file. */
  writeGate: TenantPolicySource<ApiWriteGatePolicy>;
  /**
   * Stores events as pending inbox rows, then enqueues the new ones (group commit of single-event requests:
   * event-ingester.ts).
   */
  ingestEvents: EventIngester;
  /** How long a write waits for Redis before answering anyway: what it wrote is durable already. */
  enqueueTimeoutMs: number;
  /** Wakes requests waiting for their decisions (`Prefer: wait`); without it the preference is ignored. */
  decisionWaiter?: DecisionWaiter;
  /** The stored policies' bootstrap versions and the announcement of an activation (routes/policies.ts). */
  policies: ApiPolicyDeps;
}

export type HttpMethod = 'get' | 'post' | 'patch' | 'delete';

/** A path parameter: its schema, how an error names it (`invalid task id: …`), and its documentation. */
export interface PathParam<S extends z.ZodType = z.ZodType> {
  schema: S;
  what: string;
  description: string;
}

export function pathParam<S extends z.ZodType>(schema: S, what: string, description: string): PathParam<S> {
  return { schema, what, description };
}

/** A body documented with `schema` but read by `read` (from the raw parsed JSON, `undefined` when none was sent). */
export interface BodyReader<T> {
  schema: z.ZodType;
  read: (raw: unknown) => T;
}

/**
 * A route's body: a zod schema (a request without a body is read as `{}`, so all-optional bodies may be left
 * out), or a {@link BodyReader} for a body that must be sent or is read in more than one way.
 */
export type BodySpec = z.ZodType | BodyReader<unknown>;

/** A body that must be sent: without one, the error says what is missing at `(root)`. */
export function requiredBody<S extends z.ZodType>(schema: S): BodyReader<z.output<S>> {
  return { schema, read: (raw) => parseOrThrow(schema, raw, 'request body') };
}

/** A documented reply: a description alone is an error in the one error shape; with `schema`, JSON of it. */
export type ResponseSpec = string | { description: string; schema: z.ZodType };

type ParamsOf<P> = { [K in keyof P]: P[K] extends PathParam<infer S> ? z.output<S> : never };
type QueryOf<Q> = Q extends z.ZodType ? z.output<Q> : undefined;
type BodyOf<B> = B extends z.ZodType ? z.output<B> : B extends BodyReader<infer T> ? T : undefined;

export interface RouteSpec<
  P extends Record<string, PathParam>,
  Q extends z.ZodObject | undefined,
  B extends BodySpec | undefined,
> {
  method: HttpMethod;
  /** The public path in OpenAPI syntax: `/v1/tasks/{id}`. */
  path: `${typeof API_PREFIX}/${string}`;
  /** The key needs this scope, or one of these (`admin` has them all). */
  scope: Scope | readonly Scope[];
  summary: string;
  /** More words for the document; the scope sentence is appended. */
  description?: string;
  /** One entry per `{name}` in the path, parsed in the order given. */
  params?: P;
  query?: Q;
  body?: B;
  /** Success replies and the errors particular to the route; 400, 401 and 403 are documented for every route. */
  responses: Record<number, ResponseSpec>;
}

/** What a handler is given: the parsed inputs, who is calling, and the API's dependencies. */
export interface RouteInput<P, Q, B> {
  params: ParamsOf<P>;
  query: QueryOf<Q>;
  body: BodyOf<B>;
  auth: AuthContext;
  deps: ApiDeps;
  /** The request headers, lower-case names (empty for a call without HTTP). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** What a handler answers: sent as JSON with `status` and `headers`. */
export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export function reply(status: number, body: unknown, headers?: Record<string, string>): Reply {
  return headers ? { status, body, headers } : { status, body };
}

export const ok = (body: unknown, headers?: Record<string, string>): Reply => reply(200, body, headers);

/** `value` when a lookup found it; otherwise `missing()` is thrown (a NotFoundError naming what was asked for). */
export function found<T>(value: T | undefined | null, missing: () => Error): T {
  if (value === undefined || value === null) throw missing();
  return value;
}

/** The raw inputs of a route called in-process: path parameters as strings, the query and the parsed body. */
export interface RawRouteInput {
  params?: Record<string, string>;
  query?: Record<string, unknown>;
  body?: unknown;
  /** Request headers (lower-case names), for routes that read one such as `Prefer`. */
  headers?: Readonly<Record<string, string | string[] | undefined>>;
}

/** A declared route: its declaration, for the document, and how it is served. */
export interface Route {
  spec: RouteSpec<Record<string, PathParam>, z.ZodObject | undefined, BodySpec | undefined>;
  serve(req: Request, res: Response, deps: ApiDeps): Promise<void>;
  /**
   * The route without HTTP: the same scope check, input parsing and handler as {@link Route.serve}, for the
   * console, whose acts must take exactly the API's code path (audits, separation of duties).
   */
  call(input: RawRouteInput, auth: AuthContext, deps: ApiDeps): Promise<Reply>;
}

const PLACEHOLDER = /\{([A-Za-z0-9_]+)\}/g;

/**
 * Declares one endpoint. Serving it: the scope is checked, then the path parameters, the query and the body
 * are parsed in that order (the first bad one is a 400 naming the field), then the handler runs.
 */
export function defineRoute<
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- a route without path parameters
  P extends Record<string, PathParam> = {},
  Q extends z.ZodObject | undefined = undefined,
  B extends BodySpec | undefined = undefined,
>(spec: RouteSpec<P, Q, B>, handler: (input: RouteInput<P, Q, B>) => Promise<Reply>): Route {
  const named = [...spec.path.matchAll(PLACEHOLDER)].map((m) => m[1]!);
  const declared = Object.keys(spec.params ?? {});
  if (named.join() !== declared.join())
    throw new Error(
      `${spec.method.toUpperCase()} ${spec.path}: the path names {${named.join('}, {')}} but params declares ${declared.join(', ') || 'none'}`,
    );
  const scopes: readonly Scope[] = typeof spec.scope === 'string' ? [spec.scope] : spec.scope;

  const call = async (raw: RawRouteInput, auth: AuthContext, deps: ApiDeps): Promise<Reply> => {
    assertAnyScope(auth, scopes);
    const params: Record<string, unknown> = {};
    for (const [name, param] of Object.entries(spec.params ?? {}))
      params[name] = parseOrThrow(param.schema, raw.params?.[name], param.what);
    rejectBracketKeys(raw.query);
    const query = spec.query ? parseOrThrow(spec.query, raw.query ?? {}, 'query') : undefined;
    const body = readBody(spec.body, raw.body);
    const headers = raw.headers ?? {};
    return handler({ params, query, body, auth, deps, headers } as RouteInput<P, Q, B>);
  };
  return {
    spec: spec as Route['spec'],
    call,
    async serve(req, res, deps) {
      const answer = await call(
        {
          params: req.params as Record<string, string>,
          query: req.query,
          body: req.body as unknown,
          headers: req.headers,
        },
        authOf(res),
        deps,
      );
      if (answer.headers) res.set(answer.headers);
      res.status(answer.status).json(answer.body);
    },
  };
}

/**
 * `?event_id[]=x` or `?limit[a]=1`: the query is read flat (`a=1&a=2` repeats a key), so a bracketed key would
 * be a parameter nobody reads and its filter silently dropped — a client asking for one task's decisions would
 * get all of them. Refused instead, naming the key.
 */
function rejectBracketKeys(query: Record<string, unknown> | undefined): void {
  const key = Object.keys(query ?? {}).find((name) => name.includes('[') || name.includes(']'));
  if (key === undefined) return;
  const message = `${key}: bracketed query keys are not read; repeat the key (a=1&a=2) or send one value`;
  throw new ValidationError(`invalid query: ${message}`, [{ path: key, message }]);
}

// Every zod 4 schema carries `_zod`; a BodyReader is a plain object.
const isSchema = (spec: BodySpec): spec is z.ZodType => '_zod' in spec;

function readBody(spec: BodySpec | undefined, raw: unknown): unknown {
  if (spec === undefined) return undefined;
  if (!isSchema(spec)) return spec.read(raw);
  return parseOrThrow(spec, raw ?? {}, 'request body');
}

/** The schema a body is documented with. */
export function bodySchemaOf(spec: BodySpec): z.ZodType {
  return isSchema(spec) ? spec : spec.schema;
}

/** `/v1/tasks/{id}` under a router mounted at `/v1`: `/tasks/:id`. */
export function expressPathOf(path: string, mountPath: string): string {
  if (!path.startsWith(`${mountPath}/`)) throw new Error(`route ${path} is not under ${mountPath}`);
  return path.slice(mountPath.length).replace(PLACEHOLDER, ':$1');
}

/** Serves `routes` on `router`, which the app mounts at `mountPath`. */
export function mountRoutes(
  router: Router,
  mountPath: string,
  routes: readonly Route[],
  deps: ApiDeps,
): void {
  for (const route of routes)
    router[route.spec.method](expressPathOf(route.spec.path, mountPath), (req, res) =>
      route.serve(req, res, deps),
    );
}

/**
 * Names the declared route a request is for before anything can answer it (body parsing, authentication), and
 * keeps the template (`/v1/tasks/:id`) on the response: the label of request metrics, so a 400, 401 or 403 is
 * counted against its route like a 200. Matches as express does: case-insensitive, trailing slash optional.
 * Put it first on the router that {@link mountRoutes} serves.
 */
export function labelDeclaredRoutes(mountPath: string, routes: readonly Route[]): RequestHandler {
  const matchers = routes.map((route) => {
    const path = expressPathOf(route.spec.path, mountPath);
    const pattern = path
      .split('/')
      .map((part) => (part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('/');
    return {
      method: route.spec.method.toUpperCase(),
      regex: new RegExp(`^${pattern}/?$`, 'i'),
      template: `${mountPath}${path}`,
    };
  });
  return (req, res, next) => {
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const found = matchers.find((m) => m.method === method && m.regex.test(req.path));
    if (found) res.locals[ROUTE_TEMPLATE] = found.template;
    next();
  };
}

/** `res.locals` key of the matched route's template (`/v1/tasks/:id`), the label of request metrics. */
export const ROUTE_TEMPLATE = 'routeTemplate';
