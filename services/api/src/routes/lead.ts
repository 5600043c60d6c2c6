import { z } from 'zod';
import {
  findLeadFinding,
  findLeadScan,
  finishLeadScan,
  insertLeadScan,
  listLeadFindings,
  listLeadScans,
} from '@warden/db';
import { resolveLeadFinding, silenceLeadFinding } from '@warden/lead-engine';
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
  silenceEnd,
  type LeadScanView,
} from '@warden/domain';
import { QUEUE_NAMES } from '@warden/queue';
import { readCursor } from '../cursors.js';
import { defineRoute, found, ok, pathParam, reply, type Route } from '../define-route.js';
import { errorBody } from '../http-errors.js';
import { page } from '../schemas.js';

const ScanCursorSchema = z.object({ created_at: z.iso.datetime(), scan_id: z.uuid() });
const FindingCursorSchema = z.object({ last_seen_at: z.iso.datetime(), fingerprint: z.string() });
const ScanIdSchema = z.uuid({ message: 'must be a scan id (a UUID)' });
/** How long a scan request waits for Redis to take its job. */
const SCAN_ENQUEUE_TIMEOUT_MS = 2000;

const Scan = LeadScanViewSchema.meta({ id: 'LeadScan' });
const Finding = LeadFindingViewSchema.meta({ id: 'LeadFinding' });
const fingerprintParam = pathParam(
  LeadFingerprintSchema,
  'fingerprint',
  "The finding's fingerprint (16 hex digits)",
);
const noFinding = 'No such finding for this tenant';
const findingNotFound = (fingerprint: string) => new NotFoundError(`lead finding "${fingerprint}" not found`);

/**
 * The lead miner over HTTP (docs/lead-miner.md), scoped to the caller's tenant: request a scan (queued for the
 * lead-miner, recorded in `lead_scans` at once so it can be followed), list scans and findings, resolve or
 * silence a finding. Another tenant's scan or finding is a 404.
 */
export const leadRoutes: Route[] = [
  defineRoute(
    {
      method: 'post',
      path: '/v1/lead/scans',
      scope: 'lead:run',
      summary: "Queue a lead scan of the caller's tenant",
      description:
        'Recorded in `lead_scans` at once (status `queued`) and run by the lead-miner; follow it with `GET /v1/lead/scans/{id}`.',
      body: LeadScanRequestSchema.meta({ id: 'LeadScanRequest' }),
      responses: {
        202: { description: 'Queued', schema: Scan },
        503: 'The queue (Redis) is unreachable; nothing was queued',
      },
    },
    async ({ body, auth, deps }) => {
      const requestedBy = `api_key:${auth.keyId}`;
      const scanId = await insertLeadScan(deps.db, {
        tenantId: auth.tenantId,
        windowKind: body.window,
        status: 'queued',
        trigger: 'api',
        dryRun: body.dry_run,
        forced: body.force,
        requestedBy,
      });
      try {
        await deps.queues.enqueue(
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
          { jobId: `scan-${scanId}`, timeoutMs: SCAN_ENQUEUE_TIMEOUT_MS },
        );
      } catch (error) {
        // Unlike an event, a scan request is not worth keeping for later: fail it visibly and let the caller retry.
        const message = `could not queue the scan: ${error instanceof Error ? error.message : String(error)}`;
        await finishLeadScan(deps.db, scanId, {
          status: 'failed',
          stats: {},
          warnings: [],
          error: message,
        }).catch(() => {});
        deps.logger.warn(
          { module: 'lead', action: 'enqueue_scan', status: 'error', scan_id: scanId, err: error },
          message,
        );
        return reply(503, errorBody('queue_unavailable', `${message}; try again`));
      }
      const scan = await findLeadScan(deps.db, auth.tenantId, scanId);
      return reply(202, scan satisfies LeadScanView | undefined, { location: `/v1/lead/scans/${scanId}` });
    },
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/lead/scans',
      scope: 'lead:read',
      summary: "The tenant's lead scans, newest first, keyset-paginated",
      query: LeadScansQuerySchema,
      responses: { 200: { description: 'A page of scans', schema: page(Scan) } },
    },
    async ({ query, auth, deps }) => {
      const after = readCursor(query.cursor, ScanCursorSchema);
      return ok(
        await listLeadScans(deps.db, auth.tenantId, {
          limit: query.limit,
          ...(after ? { after } : {}),
          ...(query.status ? { status: query.status } : {}),
          ...(query.window ? { windowKind: query.window } : {}),
        }),
      );
    },
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/lead/scans/{id}',
      scope: 'lead:read',
      summary: 'One lead scan: status, window, stats, warnings',
      params: { id: pathParam(ScanIdSchema, 'scan id', 'The scan id') },
      responses: { 200: { description: 'The scan', schema: Scan }, 404: 'No such scan for this tenant' },
    },
    async ({ params, auth, deps }) =>
      ok(
        found(
          await findLeadScan(deps.db, auth.tenantId, params.id),
          () => new NotFoundError(`lead scan "${params.id}" not found`),
        ),
      ),
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/lead/findings',
      scope: 'lead:read',
      summary: "The tenant's lead findings, most recently seen first, keyset-paginated",
      description: '`unlinked=true` lists findings without a follow-up task.',
      query: LeadFindingsQuerySchema,
      responses: { 200: { description: 'A page of findings', schema: page(Finding) } },
    },
    async ({ query, auth, deps }) => {
      const after = readCursor(query.cursor, FindingCursorSchema);
      return ok(
        await listLeadFindings(deps.db, auth.tenantId, {
          limit: query.limit,
          ...(after ? { after } : {}),
          ...(query.severity ? { severity: query.severity } : {}),
          ...(query.status ? { status: query.status } : {}),
          ...(query.unlinked !== undefined ? { unlinked: query.unlinked } : {}),
          ...(query.code ? { code: query.code } : {}),
        }),
      );
    },
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/lead/findings/{fingerprint}',
      scope: 'lead:read',
      summary: 'One lead finding with its evidence',
      params: { fingerprint: fingerprintParam },
      responses: { 200: { description: 'The finding', schema: Finding }, 404: noFinding },
    },
    async ({ params, auth, deps }) =>
      ok(
        found(await findLeadFinding(deps.db, auth.tenantId, params.fingerprint), () =>
          findingNotFound(params.fingerprint),
        ),
      ),
  ),

  // Resolving and silencing are a person's decisions: audited with the key that made them.
  defineRoute(
    {
      method: 'post',
      path: '/v1/lead/findings/{fingerprint}/resolve',
      scope: 'lead:run',
      summary: 'Mark a finding resolved (audited); a later scan that sees it again reopens it',
      params: { fingerprint: fingerprintParam },
      body: LeadResolveRequestSchema,
      responses: {
        200: { description: 'The finding', schema: Finding },
        404: noFinding,
        409: 'Already resolved',
      },
    },
    async ({ params, body, auth, deps }) => {
      const { fingerprint } = params;
      const result = await deps.db.transaction().execute((trx) =>
        resolveLeadFinding(trx, {
          tenantId: auth.tenantId,
          fingerprint,
          by: `api_key:${auth.keyId}`,
          now: new Date(),
          ...(body.note ? { note: body.note } : {}),
        }),
      );
      if (result.status === 'not_found') throw findingNotFound(fingerprint);
      if (result.status === 'unchanged')
        throw new ConflictError(
          `lead finding "${fingerprint}" was already resolved by ${result.finding.resolved_by} at ${result.finding.resolved_at}`,
        );
      return ok(result.finding);
    },
  ),

  defineRoute(
    {
      method: 'post',
      path: '/v1/lead/findings/{fingerprint}/silence',
      scope: 'lead:run',
      summary: 'Silence a finding until a time (audited): scans count it but open nothing for it',
      description: '`until` (a time) or `for` (`12h`, `30d`), 7 days by default, at most a year.',
      params: { fingerprint: fingerprintParam },
      body: LeadSilenceRequestSchema,
      responses: { 200: { description: 'The finding', schema: Finding }, 404: noFinding },
    },
    async ({ params, body, auth, deps }) => {
      const { fingerprint } = params;
      const now = new Date();
      const end = silenceEnd(body, now);
      if ('error' in end)
        throw new ValidationError(`invalid request body: ${end.error.path}: ${end.error.message}`, [
          end.error,
        ]);
      const result = await deps.db.transaction().execute((trx) =>
        silenceLeadFinding(trx, {
          tenantId: auth.tenantId,
          fingerprint,
          by: `api_key:${auth.keyId}`,
          until: end.until,
          now,
          ...(body.note ? { note: body.note } : {}),
        }),
      );
      if (result.status === 'not_found') throw findingNotFound(fingerprint);
      return ok(result.finding);
    },
  ),
];
