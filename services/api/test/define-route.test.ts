import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ForbiddenError, ValidationError } from '@warden/domain';
import {
  defineRoute,
  expressPathOf,
  ok,
  pathParam,
  reply,
  requiredBody,
  type ApiDeps,
  type Route,
} from '../src/define-route.js';
import { readCursor } from '../src/cursors.js';

const auth = { keyId: 'k1', tenantId: 'acme', scopes: ['tasks:read' as const] };

/** Serves `route` once on a stand-in request; returns what was sent, or throws what the route threw. */
async function serve(
  route: Route,
  request: { params?: Record<string, string>; query?: object; body?: unknown },
) {
  const sent: { status?: number; body?: unknown; headers?: Record<string, string> } = {};
  const res = {
    locals: { auth },
    set: (headers: Record<string, string>) => ((sent.headers = headers), res),
    status: (status: number) => ((sent.status = status), res),
    json: (body: unknown) => ((sent.body = body), res),
  };
  const req = { params: request.params ?? {}, query: request.query ?? {}, body: request.body };
  await route.serve(req as never, res as never, {} as ApiDeps);
  return sent;
}

const echo = (spec: Partial<Parameters<typeof defineRoute>[0]> = {}) =>
  defineRoute(
    {
      method: 'post',
      path: '/v1/things/{id}',
      scope: 'tasks:read',
      summary: 's',
      params: { id: pathParam(z.string().max(3), 'thing id', 'd') },
      responses: {},
      ...spec,
    },
    async (input) =>
      reply(201, { params: input.params, query: input.query, body: input.body }, { 'x-a': 'b' }),
  );

describe('defineRoute', () => {
  it('should turn OpenAPI path parameters into express ones under the mount', () => {
    expect(expressPathOf('/v1/tasks/{id}/gates/{gate}/release', '/v1')).toBe(
      '/tasks/:id/gates/:gate/release',
    );
    expect(() => expressPathOf('/v2/tasks', '/v1')).toThrow(/not under \/v1/);
  });

  it('should refuse a declaration whose params do not match the path', () => {
    expect(() =>
      defineRoute(
        { method: 'get', path: '/v1/things/{id}', scope: 'tasks:read', summary: 's', responses: {} },
        async () => ok({}),
      ),
    ).toThrow(/names \{id\} but params declares none/);
  });

  it('should check the scope before reading any input', async () => {
    const route = echo({ scope: ['changesets:write', 'changesets:approve'] });
    await expect(serve(route, { params: { id: 'far too long' } })).rejects.toThrow(
      new ForbiddenError('this API key lacks the "changesets:write" or "changesets:approve" scope'),
    );
  });

  it('should name a bad path parameter by what it is', async () => {
    const error = await serve(echo(), { params: { id: 'abcd' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).message).toMatch(/^invalid thing id: \(root\): /);
  });

  it('should parse the query and read a missing optional body as {}', async () => {
    const route = echo({
      query: z.object({ limit: z.coerce.number().default(5) }),
      body: z.object({ note: z.string().optional() }),
    });
    expect(await serve(route, { params: { id: 'a' }, query: { limit: '7' } })).toEqual({
      status: 201,
      headers: { 'x-a': 'b' },
      body: { params: { id: 'a' }, query: { limit: 7 }, body: {} },
    });
  });

  it('should refuse a missing required body at (root)', async () => {
    const route = echo({ body: requiredBody(z.object({ note: z.string() })) });
    await expect(serve(route, { params: { id: 'a' } })).rejects.toThrow(/^invalid request body: \(root\): /);
  });
});

describe('readCursor', () => {
  it('should decode a cursor of the schema and refuse anything else naming cursor', () => {
    const schema = z.object({ after: z.string() });
    expect(readCursor(undefined, schema)).toBeUndefined();
    expect(readCursor(Buffer.from('{"after":"x"}').toString('base64url'), schema)).toEqual({ after: 'x' });
    expect(() => readCursor('nope', schema)).toThrow(
      new ValidationError('invalid query: cursor: not a cursor this API returned', [
        { path: 'cursor', message: 'not a cursor this API returned' },
      ]),
    );
  });
});
