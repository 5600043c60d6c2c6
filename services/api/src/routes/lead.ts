import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import { z } from 'zod';
import {
  findLeadFinding,
  findLeadScan,
  finishLeadScan,
  insertLeadScan,
  listLeadFindings,
  listLeadScans,
  resolveLeadFinding,
  silenceLeadFinding,
  type Db,
} from '@warden/db';
import {
  ConflictError,
  LeadFindingViewSchema,
  LeadFindingsQuerySchema,
  LeadFingerprintSchema,
  LeadResolveRequestSchema,
  LeadScanRequestSchema,
  LeadScanViewSchema,
  LeadScansQuerySchema,
  LeadSilenceRequestSchema,
  NotFoundError,
  ValidationError,
  decodeCursor,
  parseOrThrow,
  silenceEnd,
  type LeadScanView,
} from '@warden/domain';
import type { Logger } from '@warden/observability';
import { QUEUE_NAMES, type WardenQueues } from '@warden/queue';
import { authOf, requireScope } from '../auth.js';

const ScanCursorSchema = z.object({ created_at: z.iso.datetime(), scan_id: z.uuid() });
const FindingCursorSchema = z.object({ last_seen_at: z.iso.datetime(), fingerprint: z.string() });
const ScanIdSchema = z.uuid({ message: 'must be a scan id (a UUID)' });

function cursorOf<S extends z.ZodType>(cursor: string | undefined, schema: S): z.output<S> | undefined {
  if (cursor === undefined) return undefined;
  const decoded = decodeCursor(cursor, schema);
  if (!decoded)
    throw new ValidationError('invalid query: cursor: not a cursor this API returned', [
      { path: 'cursor', message: 'not a cursor this API returned' },
    ]);
  return decoded;
}

export interface LeadRouterOptions {
  db: Db;
  queues: WardenQueues;
  logger: Logger;
  /** How long a scan request waits for Redis to take its job. @defaultValue `2000` */
  enqueueTimeoutMs?: number;
}

/**
 * The lead miner over HTTP (SPEC §4, §6), scoped to the caller's tenant: request a scan (queued for the
 * lead-miner, recorded in `lead_scans` at once so it can be followed), list scans and findings, resolve or
 * silence a finding. Another tenant's scan or finding is a 404.
 */
export function leadRouter(options: LeadRouterOptions): Router {
  const router = Router();
  const { db } = options;

  router.post('/lead/scans', requireScope('lead:run'), async (req, res) => {
    const auth = authOf(res);
    const body = parseOrThrow(LeadScanRequestSchema, req.body ?? {}, 'request body');
    const requestedBy = `api_key:${auth.keyId}`;
    const scanId = await insertLeadScan(db, {
      tenantId: auth.tenantId,
      windowKind: body.window,
      status: 'queued',
      trigger: 'api',
      dryRun: body.dry_run,
      forced: body.force,
      requestedBy,
    });
    try {
      await options.queues.enqueue(
        QUEUE_NAMES.leadScans,
        'scan',
        {
          tenant_id: auth.tenantId,
          window: body.window,
          dry_run: body.dry_run,
          force: body.force,
          scan_id: scanId,
          trigger: 'api',
          requested_by: requestedBy,
        },
        { jobId: `scan-${scanId}`, timeoutMs: options.enqueueTimeoutMs ?? 2000 },
      );
    } catch (error) {
      // Unlike an event, a scan request is not worth keeping for later: fail it visibly and let the caller retry.
      const message = `could not queue the scan: ${error instanceof Error ? error.message : String(error)}`;
      await finishLeadScan(db, scanId, { status: 'failed', stats: {}, warnings: [], error: message }).catch(
        () => {},
      );
      options.logger.warn(
        { module: 'lead', action: 'enqueue_scan', status: 'error', scan_id: scanId, err: error },
        message,
      );
      res
        .status(503)
        .json({ error: { code: 'queue_unavailable', message: `${message}; try again`, details: [] } });
      return;
    }
    const scan = await findLeadScan(db, auth.tenantId, scanId);
    res
      .status(202)
      .location(`/v1/lead/scans/${scanId}`)
      .json(scan satisfies LeadScanView | undefined);
  });

  router.get('/lead/scans', requireScope('lead:read'), async (req, res) => {
    const query = parseOrThrow(LeadScansQuerySchema, req.query, 'query');
    const after = cursorOf(query.cursor, ScanCursorSchema);
    res.json(
      await listLeadScans(db, authOf(res).tenantId, {
        limit: query.limit,
        ...(after ? { after } : {}),
        ...(query.status ? { status: query.status } : {}),
        ...(query.window ? { windowKind: query.window } : {}),
      }),
    );
  });

  router.get('/lead/scans/:id', requireScope('lead:read'), async (req, res) => {
    const scanId = parseOrThrow(ScanIdSchema, req.params.id, 'scan id');
    const scan = await findLeadScan(db, authOf(res).tenantId, scanId);
    if (!scan) throw new NotFoundError(`lead scan "${scanId}" not found`);
    res.json(scan);
  });

  router.get('/lead/findings', requireScope('lead:read'), async (req, res) => {
    const query = parseOrThrow(LeadFindingsQuerySchema, req.query, 'query');
    const after = cursorOf(query.cursor, FindingCursorSchema);
    res.json(
      await listLeadFindings(db, authOf(res).tenantId, {
        limit: query.limit,
        ...(after ? { after } : {}),
        ...(query.severity ? { severity: query.severity } : {}),
        ...(query.status ? { status: query.status } : {}),
        ...(query.unlinked !== undefined ? { unlinked: query.unlinked } : {}),
        ...(query.code ? { code: query.code } : {}),
      }),
    );
  });

  router.get('/lead/findings/:fingerprint', requireScope('lead:read'), async (req, res) => {
    const fingerprint = parseOrThrow(LeadFingerprintSchema, req.params.fingerprint, 'fingerprint');
    const finding = await findLeadFinding(db, authOf(res).tenantId, fingerprint);
    if (!finding) throw new NotFoundError(`lead finding "${fingerprint}" not found`);
    res.json(finding);
  });

  // Resolving and silencing are a person's decisions: audited with the key that made them.
  router.post('/lead/findings/:fingerprint/resolve', requireScope('lead:run'), async (req, res) => {
    const auth = authOf(res);
    const fingerprint = parseOrThrow(LeadFingerprintSchema, req.params.fingerprint, 'fingerprint');
    const body = parseOrThrow(LeadResolveRequestSchema, req.body ?? {}, 'request body');
    const result = await db
      .transaction()
      .execute((trx) =>
        resolveLeadFinding(trx, {
          tenantId: auth.tenantId,
          fingerprint,
          by: `api_key:${auth.keyId}`,
          now: new Date(),
          ...(body.note ? { note: body.note } : {}),
        }),
      );
    if (result.status === 'not_found') throw new NotFoundError(`lead finding "${fingerprint}" not found`);
    if (result.status === 'unchanged')
      throw new ConflictError(
        `lead finding "${fingerprint}" was already resolved by ${result.finding.resolved_by} at ${result.finding.resolved_at}`,
      );
    res.json(result.finding);
  });

  router.post('/lead/findings/:fingerprint/silence', requireScope('lead:run'), async (req, res) => {
    const auth = authOf(res);
    const fingerprint = parseOrThrow(LeadFingerprintSchema, req.params.fingerprint, 'fingerprint');
    const body = parseOrThrow(LeadSilenceRequestSchema, req.body ?? {}, 'request body');
    const now = new Date();
    const end = silenceEnd(body, now);
    if ('error' in end)
      throw new ValidationError(`invalid request body: ${end.error.path}: ${end.error.message}`, [end.error]);
    const result = await db
      .transaction()
      .execute((trx) =>
        silenceLeadFinding(trx, {
          tenantId: auth.tenantId,
          fingerprint,
          by: `api_key:${auth.keyId}`,
          until: end.until,
          now,
          ...(body.note ? { note: body.note } : {}),
        }),
      );
    if (result.status === 'not_found') throw new NotFoundError(`lead finding "${fingerprint}" not found`);
    res.json(result.finding);
  });

  return router;
}

interface LeadOpenApiParts {
  security: Array<Record<string, string[]>>;
  common: Record<number, { description: string; content: Record<string, { schema: z.ZodType }> }>;
  errorResponse: (description: string) => {
    description: string;
    content: Record<string, { schema: z.ZodType }>;
  };
  json: <S extends z.ZodType>(
    description: string,
    schema: S,
  ) => { description: string; content: Record<string, { schema: S }> };
}

/** The lead paths of the OpenAPI document, from the schemas the routes above validate with. */
export function registerLeadPaths(registry: OpenAPIRegistry, parts: LeadOpenApiParts): void {
  const { security, common, errorResponse, json } = parts;
  const Scan = LeadScanViewSchema.meta({ id: 'LeadScan' });
  const Finding = LeadFindingViewSchema.meta({ id: 'LeadFinding' });
  const ScanRequest = LeadScanRequestSchema.meta({ id: 'LeadScanRequest' });
  const page = <S extends z.ZodType>(item: S) =>
    z.object({ items: z.array(item), next_cursor: z.string().nullable() });
  const fingerprint = z.object({
    fingerprint: z.string().meta({ description: "The finding's fingerprint (16 hex digits)" }),
  });
  const notFound = { 404: errorResponse('No such finding for this tenant') };
  const paging = { limit: z.number().int().min(1).max(100).optional(), cursor: z.string().optional() };

  registry.registerPath({
    method: 'post',
    path: '/v1/lead/scans',
    summary: "Queue a lead scan of the caller's tenant",
    description:
      'Recorded in `lead_scans` at once (status `queued`) and run by the lead-miner; follow it with `GET /v1/lead/scans/{id}`. Scope `lead:run`.',
    security,
    request: { body: { content: { 'application/json': { schema: ScanRequest } } } },
    responses: {
      202: json('Queued', Scan),
      ...common,
      503: errorResponse('The queue (Redis) is unreachable; nothing was queued'),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/lead/scans',
    summary: "The tenant's lead scans, newest first, keyset-paginated",
    description: 'Scope `lead:read`.',
    security,
    request: {
      query: z.object({
        status: z.enum(['queued', 'running', 'completed', 'failed', 'skipped']).optional(),
        window: z.string().optional(),
        ...paging,
      }),
    },
    responses: { 200: json('A page of scans', page(Scan)), ...common },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/lead/scans/{id}',
    summary: 'One lead scan: status, window, stats, warnings',
    description: 'Scope `lead:read`.',
    security,
    request: { params: z.object({ id: z.string().meta({ description: 'The scan id' }) }) },
    responses: { 200: json('The scan', Scan), ...common, 404: errorResponse('No such scan for this tenant') },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/lead/findings',
    summary: "The tenant's lead findings, most recently seen first, keyset-paginated",
    description: '`unlinked=true` lists findings without a follow-up task. Scope `lead:read`.',
    security,
    request: {
      query: z.object({
        severity: z.enum(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']).optional(),
        status: z.enum(['open', 'resolved', 'silenced']).optional(),
        unlinked: z.enum(['true', 'false']).optional(),
        code: z.string().optional(),
        ...paging,
      }),
    },
    responses: { 200: json('A page of findings', page(Finding)), ...common },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/lead/findings/{fingerprint}',
    summary: 'One lead finding with its evidence',
    description: 'Scope `lead:read`.',
    security,
    request: { params: fingerprint },
    responses: { 200: json('The finding', Finding), ...common, ...notFound },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/lead/findings/{fingerprint}/resolve',
    summary: 'Mark a finding resolved (audited); a later scan that sees it again reopens it',
    description: 'Scope `lead:run`.',
    security,
    request: {
      params: fingerprint,
      body: { content: { 'application/json': { schema: LeadResolveRequestSchema } } },
    },
    responses: {
      200: json('The finding', Finding),
      ...common,
      ...notFound,
      409: errorResponse('Already resolved'),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/lead/findings/{fingerprint}/silence',
    summary: 'Silence a finding until a time (audited): scans count it but open nothing for it',
    description:
      '`until` (a time) or `for` (`12h`, `30d`), 7 days by default, at most a year. Scope `lead:run`.',
    security,
    request: {
      params: fingerprint,
      body: { content: { 'application/json': { schema: LeadSilenceRequestSchema } } },
    },
    responses: { 200: json('The finding', Finding), ...common, ...notFound },
  });
}
