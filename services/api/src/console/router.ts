/**
 * The Warden console at `/console`: sign-in with an API key (exchanged for a signed session cookie), the inbox
 * (live over server-sent events from the decision stream), the gate, change-set, findings and triggers pages.
 * Every act calls the API's own declared route in-process ({@link Route.call}), so scopes, audits and separation
 * of duties are exactly the API's.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import {
  findActiveApiKeyById,
  findActiveApiKeyByHash,
  findChangeSetRow,
  listLeadFindings,
  listWaitingItems,
  verifyAuditChain,
} from '@warden/db';
import {
  ForbiddenError,
  NotFoundError,
  UnauthorizedError,
  ValidationError,
  WardenError,
  computeChangeSetChecksum,
  effectiveScopes,
  hashApiKey,
  type ChangeSetView,
  type FileChange,
  type TaskView,
} from '@warden/domain';
import type { AuthContext } from '../auth.js';
import { clientErrorOf } from '../http-errors.js';
import { refuseHostileBody } from '../input-guards.js';
import type { ApiDeps, RawRouteInput, Route } from '../define-route.js';
import type { DecisionFeed } from './decision-feed.js';
import { renderFileDiff } from './diff.js';
import {
  CONSOLE_PATH,
  PRE_SESSION_COOKIE,
  SESSION_COOKIE,
  SessionCodec,
  readCookie,
  type SessionClaims,
} from './session.js';
import {
  changeSetPage,
  errorPage,
  findingsPage,
  notificationsPage,
  type ChannelRowView,
  type DeliveryRowView,
  gatePage,
  inboxItems,
  inboxPage,
  signInPage,
  triggersPage,
  type AuditRowView,
  type ChainStatus,
  type DecisionRowView,
  type FindingRowView,
  type TriggerStatusRow,
} from './views.js';
import type { SafeHtml } from './html.js';

export interface ConsoleOptions {
  deps: ApiDeps;
  /** The API's declared routes: every act goes through one of them. */
  routes: readonly Route[];
  session: SessionCodec;
  /** Live inbox updates; without it the inbox is still served, just not live. @defaultValue none */
  feed?: DecisionFeed;
  /** Largest form body. @defaultValue `64kb` */
  maxFormBody?: string;
}

interface Signed {
  auth: AuthContext;
  claims: SessionClaims;
  csrf: string;
}

/** How long one verification of a tenant's audit chain is shown before the chain is walked again. */
const CHAIN_CHECK_TTL_MS = 30_000;

const require = createRequire(import.meta.url);
const ASSETS: Record<string, { file: string; type: string }> = {
  'console.css': { file: new URL('./assets/console.css', import.meta.url).pathname, type: 'text/css' },
  'console.js': { file: new URL('./assets/console.js', import.meta.url).pathname, type: 'text/javascript' },
  'diff2html.min.css': { file: require.resolve('diff2html/bundles/css/diff2html.min.css'), type: 'text/css' },
};

/** A browser navigation (wants HTML) gets pages and redirects; anything else gets the API's JSON errors. */
const wantsHtml = (req: Request) => req.accepts(['json', 'html']) === 'html';

const formString = (body: unknown, name: string): string | undefined => {
  const value = (body as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value : undefined;
};

export function consoleRouter(options: ConsoleOptions): Router {
  const { deps, session } = options;
  const router = express.Router({ strict: false });
  const byRoute = new Map(options.routes.map((r) => [`${r.spec.method} ${r.spec.path}`, r]));
  const callApi = async (method: string, path: string, input: RawRouteInput, auth: AuthContext) => {
    const route = byRoute.get(`${method} ${path}`);
    if (!route) throw new Error(`console: no API route ${method} ${path}`);
    return (await route.call(input, auth, deps)).body;
  };
  const assets = new Map<string, Promise<Buffer>>();

  // Security headers for every console reply: no framing, no inline script, nothing from elsewhere.
  router.use((_req, res, next) => {
    res.setHeader(
      'content-security-policy',
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'same-origin');
    res.setHeader('cache-control', 'no-store');
    next();
  });
  router.use(
    express.urlencoded({ extended: false, limit: options.maxFormBody ?? '64kb', parameterLimit: 50 }),
  );
  // A form field Postgres cannot store (a NUL) is a 400 naming it, as for the API's JSON bodies.
  router.use(refuseHostileBody());

  router.get('/assets/:file', async (req, res) => {
    const asset = Object.hasOwn(ASSETS, req.params.file) ? ASSETS[req.params.file] : undefined;
    if (!asset) throw new NotFoundError(`no console asset "${req.params.file}"`);
    let body = assets.get(req.params.file);
    if (!body) assets.set(req.params.file, (body = readFile(asset.file)));
    res.setHeader('cache-control', 'public, max-age=3600');
    res.type(asset.type).send(await body);
  });

  /** The session's key, looked up again now: a revoked key or a changed scope takes effect at once. */
  async function signedIn(req: Request): Promise<Signed | undefined> {
    const claims = session.verify(readCookie(req, SESSION_COOKIE));
    if (!claims) return undefined;
    const key = await findActiveApiKeyById(deps.db, claims.keyId).catch((error: unknown) => {
      // A malformed id cannot come from a genuine cookie; anything else (Postgres away) is the API's fault.
      if (error instanceof Error && /invalid input syntax/.test(error.message)) return undefined;
      throw error;
    });
    if (!key || key.tenantId !== claims.tenantId) return undefined;
    const scopes = effectiveScopes(key.scopes, key.separationOfDuties);
    if (scopes.includes('events:write')) return undefined;
    return {
      auth: { keyId: key.keyId, tenantId: key.tenantId, owner: key.owner, scopes },
      claims,
      csrf: session.csrfToken(claims),
    };
  }

  const requireSession = async (req: Request, res: Response): Promise<Signed | undefined> => {
    const signed = await signedIn(req);
    if (signed) return signed;
    session.clearCookie(res, SESSION_COOKIE);
    if (wantsHtml(req) && req.method === 'GET') {
      res.redirect(303, `${CONSOLE_PATH}/sign-in`);
      return undefined;
    }
    throw new UnauthorizedError(
      'not signed in to the console (or the session expired, or its key was revoked)',
    );
  };

  /** State changes: same origin (when the browser says), and the session's CSRF token in the form or header. */
  const requireAct = async (req: Request, res: Response): Promise<Signed | undefined> => {
    const signed = await requireSession(req, res);
    if (!signed) return undefined;
    assertSameOrigin(req);
    const token = formString(req.body, '_csrf') ?? req.get('x-csrf-token');
    if (!session.checkCsrf(signed.claims, token))
      throw new ForbiddenError('missing or wrong CSRF token: reload the page and try again');
    return signed;
  };

  const send = (res: Response, page: SafeHtml, status = 200) =>
    res.status(status).type('html').send(page.value);
  const pageCtx = (s: Signed) => ({
    title: '',
    who: { owner: s.auth.owner, tenantId: s.auth.tenantId },
    csrf: s.csrf,
  });

  router.get('/', (_req, res) => res.redirect(303, `${CONSOLE_PATH}/inbox`));

  router.get('/sign-in', (_req, res) => {
    const value = randomBytes(16).toString('base64url');
    session.setCookie(res, PRE_SESSION_COOKIE, value, 3600_000);
    send(res, signInPage(session.preSessionToken(value)));
  });

  router.post('/sign-in', async (req, res) => {
    assertSameOrigin(req);
    if (!session.checkPreSession(readCookie(req, PRE_SESSION_COOKIE), formString(req.body, '_csrf')))
      throw new ForbiddenError('missing or wrong sign-in token: open the sign-in page again');
    const retry = (status: number, message: string) => {
      const value = randomBytes(16).toString('base64url');
      session.setCookie(res, PRE_SESSION_COOKIE, value, 3600_000);
      send(res, signInPage(session.preSessionToken(value), message), status);
    };
    const apiKey = formString(req.body, 'api_key')?.trim();
    if (!apiKey || apiKey.length > 512) return retry(400, 'Enter an API key.');
    const key = await findActiveApiKeyByHash(deps.db, hashApiKey(apiKey));
    if (!key) return retry(401, 'That API key is not valid or was revoked.');
    // Separation of duties: a key that writes an agent's events is an agent's, never a person's.
    if (key.scopes.includes('events:write'))
      return retry(
        403,
        "This key writes an agent's events (events:write): agent keys cannot sign in to the console, so an agent can never approve its own work.",
      );
    const issued = session.issue(key.keyId, key.tenantId);
    session.setCookie(res, SESSION_COOKIE, issued.cookie, session.ttlMs);
    session.clearCookie(res, PRE_SESSION_COOKIE);
    res.redirect(303, `${CONSOLE_PATH}/inbox`);
  });

  router.post('/sign-out', async (req, res) => {
    const signed = await signedIn(req);
    // Signing out needs the token too (else any page could sign a person out), but an expired session just ends.
    if (signed) {
      assertSameOrigin(req);
      if (!session.checkCsrf(signed.claims, formString(req.body, '_csrf') ?? req.get('x-csrf-token')))
        throw new ForbiddenError('missing or wrong CSRF token: reload the page and try again');
    }
    session.clearCookie(res, SESSION_COOKIE);
    res.redirect(303, `${CONSOLE_PATH}/sign-in`);
  });

  router.get('/inbox', async (req, res) => {
    const s = await requireSession(req, res);
    if (!s) return;
    send(res, inboxPage(pageCtx(s), await listWaitingItems(deps.db, s.auth.tenantId)));
  });

  router.get('/inbox/items', async (req, res) => {
    const s = await requireSession(req, res);
    if (!s) return;
    send(res, inboxItems(await listWaitingItems(deps.db, s.auth.tenantId)));
  });

  router.get('/events', async (req, res) => {
    const s = await requireSession(req, res);
    if (!s) return;
    res.status(200).set({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    res.write('retry: 3000\n: connected\n\n');
    const unsubscribe = options.feed?.subscribe(
      s.auth.tenantId,
      (notice) => {
        res.write(`event: decision\ndata: ${JSON.stringify({ decision_type: notice.decision_type })}\n\n`);
      },
      () => res.end(),
    );
    // Comments keep proxies from closing an idle stream; a session that ended closes it.
    const heartbeat = setInterval(() => {
      void signedIn(req)
        .then((still) => (still ? res.write(': keep-alive\n\n') : res.end()))
        .catch(() => res.end());
    }, 15_000);
    req.on('close', () => {
      clearInterval(heartbeat);
      unsubscribe?.();
    });
  });

  router.get('/tasks/:id', async (req, res) => {
    const s = await requireSession(req, res);
    if (!s) return;
    const params = { id: req.params.id! };
    const task = (await callApi('get', '/v1/tasks/{id}', { params }, s.auth)) as TaskView;
    const decisions = (await callApi('get', '/v1/tasks/{id}/decisions', { params }, s.auth)) as {
      items: DecisionRowView[];
    };
    const audits = await allAudits('/v1/tasks/{id}/audits', params, s.auth);
    const chain = await chainStatus(s.auth.tenantId);
    send(res, gatePage(pageCtx(s), task, decisions.items, audits, chain));
  });

  router.post('/tasks/:id/gates/:gate/release', async (req, res) => {
    const s = await requireAct(req, res);
    if (!s) return;
    const reason = requiredReason(req.body);
    await callApi(
      'post',
      '/v1/tasks/{id}/gates/{gate}/release',
      { params: { id: req.params.id!, gate: req.params.gate! }, body: { note: reason } },
      s.auth,
    );
    res.redirect(303, `${CONSOLE_PATH}/tasks/${encodeURIComponent(req.params.id!)}`);
  });

  router.post('/tasks/:id/gates/:gate/deny', async (req, res) => {
    const s = await requireAct(req, res);
    if (!s) return;
    await callApi(
      'post',
      '/v1/tasks/{id}/gates/{gate}/deny',
      { params: { id: req.params.id!, gate: req.params.gate! }, body: { reason: requiredReason(req.body) } },
      s.auth,
    );
    res.redirect(303, `${CONSOLE_PATH}/tasks/${encodeURIComponent(req.params.id!)}`);
  });

  router.post('/tasks/:id/unblock', async (req, res) => {
    const s = await requireAct(req, res);
    if (!s) return;
    await callApi(
      'post',
      '/v1/tasks/{id}/unblock',
      { params: { id: req.params.id! }, body: { reason: requiredReason(req.body) } },
      s.auth,
    );
    res.redirect(303, `${CONSOLE_PATH}/tasks/${encodeURIComponent(req.params.id!)}`);
  });

  router.get('/changesets/:id', async (req, res) => {
    const s = await requireSession(req, res);
    if (!s) return;
    const params = { id: req.params.id! };
    const view = (await callApi('get', '/v1/changesets/{id}', { params }, s.auth)) as ChangeSetView;
    const audits = await allAudits('/v1/changesets/{id}/audits', params, s.auth);
    send(res, changeSetPage(pageCtx(s), view, await fileDiffs(s.auth.tenantId, view), audits));
  });

  router.post('/changesets/:id/approve', async (req, res) => {
    const s = await requireAct(req, res);
    if (!s) return;
    const checksum = formString(req.body, 'checksum');
    // Approval is bound to the checksum on the page the person reviewed; without it nothing is approved.
    if (!checksum)
      throw new ValidationError('checksum: the approval must name the checksum you reviewed', [
        { path: 'checksum', message: 'required' },
      ]);
    // The console asks a reason of every decision, approvals included; it is the approval's note in the API.
    const note = requiredReason(req.body);
    await callApi(
      'post',
      '/v1/changesets/{id}/approve',
      { params: { id: req.params.id! }, body: { checksum, note } },
      s.auth,
    );
    res.redirect(303, `${CONSOLE_PATH}/changesets/${encodeURIComponent(req.params.id!)}`);
  });

  router.post('/changesets/:id/reject', async (req, res) => {
    const s = await requireAct(req, res);
    if (!s) return;
    await callApi(
      'post',
      '/v1/changesets/{id}/reject',
      { params: { id: req.params.id! }, body: { reason: requiredReason(req.body) } },
      s.auth,
    );
    res.redirect(303, `${CONSOLE_PATH}/changesets/${encodeURIComponent(req.params.id!)}`);
  });

  router.get('/findings', async (req, res) => {
    const s = await requireSession(req, res);
    if (!s) return;
    // The list route's scope check first, so a key without lead:read sees the API's 403.
    await callApi('get', '/v1/lead/findings', { query: { limit: '1' } }, s.auth);
    const page = await listLeadFindings(deps.db, s.auth.tenantId, { limit: 200 });
    send(res, findingsPage(pageCtx(s), page.items as unknown as FindingRowView[]));
  });

  for (const act of ['resolve', 'silence'] as const)
    router.post(`/findings/:fingerprint/${act}`, async (req, res) => {
      const s = await requireAct(req, res);
      if (!s) return;
      const body = act === 'silence' ? { for: formString(req.body, 'for') ?? '7d' } : {};
      await callApi(
        'post',
        `/v1/lead/findings/{fingerprint}/${act}`,
        { params: { fingerprint: req.params.fingerprint! }, body },
        s.auth,
      );
      res.redirect(303, `${CONSOLE_PATH}/findings`);
    });

  router.get('/notifications', async (req, res) => {
    const s = await requireSession(req, res);
    if (!s) return;
    // Through the API's own routes: a key without notifications:write sees the API's 403.
    const channels = (await callApi('get', '/v1/notification-channels', {}, s.auth)) as {
      items: ChannelRowView[];
    };
    const deliveries = (await callApi(
      'get',
      '/v1/notification-deliveries',
      { query: { limit: '100' } },
      s.auth,
    )) as { items: DeliveryRowView[] };
    send(res, notificationsPage(pageCtx(s), channels.items, deliveries.items));
  });

  for (const act of ['enable', 'disable'] as const)
    router.post(`/notifications/channels/:channel/${act}`, async (req, res) => {
      const s = await requireAct(req, res);
      if (!s) return;
      await callApi(
        'patch',
        '/v1/notification-channels/{channel}',
        { params: { channel: req.params.channel! }, body: { enabled: act === 'enable' } },
        s.auth,
      );
      res.redirect(303, `${CONSOLE_PATH}/notifications`);
    });

  router.get('/triggers', async (req, res) => {
    const s = await requireSession(req, res);
    if (!s) return;
    const list = (await callApi('get', '/v1/triggers', { query: { limit: '100' } }, s.auth)) as {
      items: Array<{ event_name: string }>;
    };
    const rows: TriggerStatusRow[] = [];
    for (const t of list.items) {
      const status = (await callApi(
        'get',
        '/v1/triggers/{name}/status',
        { params: { name: t.event_name } },
        s.auth,
      )) as {
        paused: boolean;
        enabled: boolean;
        breaker: { state?: string };
        next_fires: string[];
        last_runs: Array<{ status?: string; scheduled_for?: string }>;
      };
      rows.push({
        name: t.event_name,
        paused: status.paused,
        enabled: status.enabled,
        breaker: status.breaker?.state ?? 'closed',
        next_fires: status.next_fires,
        last_runs: status.last_runs,
      });
    }
    send(res, triggersPage(pageCtx(s), rows));
  });

  for (const act of ['pause', 'resume'] as const)
    router.post(`/triggers/:name/${act}`, async (req, res) => {
      const s = await requireAct(req, res);
      if (!s) return;
      await callApi(
        'post',
        `/v1/triggers/{name}/${act}`,
        { params: { name: req.params.name! }, body: {} },
        s.auth,
      );
      res.redirect(303, `${CONSOLE_PATH}/triggers`);
    });

  // Pages get an HTML error page; other callers (fetch, curl, the route fuzz) get the API's JSON error shape.
  router.use(async (error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent || !wantsHtml(req)) return next(error);
    const client = clientErrorOf(error);
    const status =
      client?.status ??
      (error instanceof WardenError && error.httpStatus < 500 ? error.httpStatus : undefined);
    if (status === undefined) return next(error);
    const message = client?.body.error.message ?? (error as Error).message;
    const signed = await signedIn(req).catch(() => undefined);
    send(res, errorPage(signed ? pageCtx(signed) : { title: '' }, status, message), status);
  });

  async function allAudits(
    path: string,
    params: Record<string, string>,
    auth: AuthContext,
  ): Promise<AuditRowView[]> {
    const rows: AuditRowView[] = [];
    let cursor: string | null = null;
    // A trail is short; cap the pages so a huge one cannot stall the page.
    for (let i = 0; i < 10; i++) {
      const page = (await callApi(
        'get',
        path,
        { params, query: { limit: '100', ...(cursor ? { cursor } : {}) } },
        auth,
      )) as {
        items: AuditRowView[];
        next_cursor: string | null;
      };
      rows.push(...page.items);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    return rows;
  }

  /**
   * The tenant's audit chain, verified: a walk of the whole chain, so one walk per tenant serves every page for
   * {@link CHAIN_CHECK_TTL_MS} (concurrent views share it); a failed walk is not kept.
   */
  const chainChecks = new Map<string, { at: number; result: Promise<ChainStatus> }>();
  function chainStatus(tenantId: string): Promise<ChainStatus> {
    const now = Date.now();
    const cached = chainChecks.get(tenantId);
    if (cached && now - cached.at < CHAIN_CHECK_TTL_MS) return cached.result;
    if (chainChecks.size >= 1000) chainChecks.clear();
    const result = verifyAuditChain(deps.db, tenantId, { maxProblems: 5 }).then((v) => ({
      ok: v.problems.length === 0,
      rows: v.rows,
      problems: v.problems.map((p) => p.message),
      checkedAt: new Date(now).toISOString(),
    }));
    chainChecks.set(tenantId, { at: now, result });
    result.catch(() => chainChecks.delete(tenantId));
    return result;
  }

  /** The diff of what the checksum covers: the stored changes, checked against the checksum before showing them. */
  async function fileDiffs(tenantId: string, view: ChangeSetView) {
    const row = await findChangeSetRow(deps.db, tenantId, view.changeset_id);
    if (!row) return { error: 'the change set is gone' };
    let changes: FileChange[];
    try {
      changes = JSON.parse(row.changes_json) as FileChange[];
    } catch {
      return { error: 'the stored changes do not parse: do not approve' };
    }
    if (computeChangeSetChecksum(changes) !== view.checksum)
      return { error: 'the stored changes do not match the checksum: do not approve' };
    return changes.slice(0, 500).map((change, i) => renderFileDiff(change, i));
  }

  return router;
}

function requiredReason(body: unknown): string {
  const reason = formString(body, 'reason')?.trim();
  if (!reason)
    throw new ValidationError('reason: say why (a reason is required)', [
      { path: 'reason', message: 'required' },
    ]);
  if (reason.length > 2000)
    throw new ValidationError('reason: at most 2000 characters', [{ path: 'reason', message: 'too long' }]);
  return reason;
}

/** A cross-site POST carries another Origin: refused whatever cookie it brings (SameSite=Strict is the first wall). */
function assertSameOrigin(req: Request): void {
  const origin = req.get('origin');
  if (origin === undefined) return;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    throw new ForbiddenError('cross-origin request refused');
  }
  if (host !== req.get('host')) throw new ForbiddenError('cross-origin request refused');
}
