/**
 * Stored policy versions (`/v1/policies`): push a draft (validated, with its diff against the active
 * version), read versions, activate a draft with a second person's `policies:approve` key, roll back to an
 * earlier version, and read the audit trail of the changes. See docs/supervisor.md, "Changing a policy".
 */
import { z } from 'zod';
import { findPolicyVersion, listPolicyVersions, policyAuditTaskId, replayArchive } from '@warden/db';
import {
  PageQuerySchema,
  PolicyActivateSchema,
  PolicyKindSchema,
  PolicyPushSchema,
  PolicyRollbackSchema,
  PolicyVersionNumberSchema,
  PolicyVersionViewSchema,
  NotFoundError,
  Backtest,
  builtInPolicies,
  parseLeadWindow,
  parsePolicySource,
  ValidationError,
  MAX_POLICY_SOURCE_CHARS,
} from '@warden/domain';
import { AuditPage, auditTrailPage } from '../audit-trail.js';
import { actorOf } from '../auth.js';
import { defineRoute, ok, pathParam, reply, requiredBody, type Route } from '../define-route.js';
import { activatePolicy, policyVersionView, pushPolicy, rollbackPolicy } from '../policy-changes.js';

const PolicyVersion = PolicyVersionViewSchema.meta({ id: 'PolicyVersion' });
const PolicyVersionList = z.object({ items: z.array(PolicyVersion) }).meta({ id: 'PolicyVersionList' });

const kind = pathParam(PolicyKindSchema, 'policy kind', '`supervisor`, `writegate` or `lead-rules`');
const version = pathParam(PolicyVersionNumberSchema, 'policy version', 'The stored version number');

const READERS = ['policies:read', 'policies:write', 'policies:approve'] as const;

const ListQuerySchema = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(500)
    .default(50)
    .meta({ description: 'Newest first; at most 500' }),
});

const noVersion = 'No such version for this tenant and kind';

const BacktestRequestSchema = z
  .object({
    source: z
      .string()
      .min(1)
      .max(MAX_POLICY_SOURCE_CHARS)
      .optional()
      .meta({ description: 'The candidate supervisor policy as YAML; or give `version`' }),
    version: PolicyVersionNumberSchema.optional().meta({
      description: 'A stored supervisor version as the candidate',
    }),
    since: z
      .string()
      .max(16)
      .default('30d')
      .meta({ description: 'The window: 24h, 30d, any Nh / Nd up to 90d' }),
  })
  .strict();

const Sample = z.object({ tenant_id: z.string(), task_id: z.string(), event_id: z.string() });
const BacktestReportSchema = z
  .object({
    since: z.string(),
    elapsed_ms: z.number(),
    events: z.number(),
    tasks: z.number(),
    changed: z.number(),
    matrix: z.array(
      z.object({
        recorded: z.string(),
        candidate: z.string(),
        count: z.number(),
        rate: z.number(),
        samples: z.array(Sample),
      }),
    ),
    findings_gained: z.record(z.string(), z.number()),
    findings_lost: z.record(z.string(), z.number()),
    tasks_blocked_earlier: z.array(Sample),
    tasks_blocked_later: z.array(Sample),
    tasks_blocked_earlier_count: z.number(),
    tasks_blocked_later_count: z.number(),
  })
  .meta({ id: 'PolicyBacktest' });

export const policyRoutes: Route[] = [
  defineRoute(
    {
      method: 'post',
      path: '/v1/policies',
      scope: 'policies:write',
      summary: 'Push a policy as a draft version, with its diff against the active version',
      description:
        'The source is validated against the schema of its kind (400 naming the line or field). The first push ' +
        "of a kind stores the service's bootstrap policy file as version 1, active. A draft changes nothing " +
        'until a different person activates it.',
      body: requiredBody(PolicyPushSchema),
      responses: {
        201: { description: 'The stored draft', schema: PolicyVersion },
        409: 'Identical to the active version',
      },
    },
    async ({ body, auth, deps }) => {
      const row = await pushPolicy(deps.db, deps.policies, {
        tenantId: auth.tenantId,
        kind: body.kind,
        source: body.source,
        note: body.note,
        actor: actorOf(auth),
      });
      return reply(201, policyVersionView(row, { withSource: false }));
    },
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/policies/{kind}/versions',
      scope: READERS,
      summary: "The tenant's versions of a policy, newest first (without their sources)",
      params: { kind },
      query: ListQuerySchema,
      responses: { 200: { description: 'The versions', schema: PolicyVersionList } },
    },
    async ({ params, query, auth, deps }) => {
      const rows = await listPolicyVersions(deps.db, auth.tenantId, params.kind, query.limit);
      return ok({ items: rows.map((row) => policyVersionView(row, { withSource: false })) });
    },
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/policies/{kind}/versions/{version}',
      scope: READERS,
      summary: 'One version with its source and its diff',
      params: { kind, version },
      responses: { 200: { description: 'The version', schema: PolicyVersion }, 404: noVersion },
    },
    async ({ params, auth, deps }) => {
      const row = await findPolicyVersion(deps.db, auth.tenantId, params.kind, params.version);
      if (!row) throw new NotFoundError(`${params.kind} policy version ${params.version} not found`);
      return ok(policyVersionView(row, { withSource: true }));
    },
  ),

  // A second person's decision: never the key, nor the owner, that pushed the draft.
  defineRoute(
    {
      method: 'post',
      path: '/v1/policies/{kind}/versions/{version}/activate',
      scope: 'policies:approve',
      summary: 'Activate a draft; every service picks it up within seconds',
      description:
        'Refused (403) with the key, or another key of the owner, that pushed it; refused (409) when the draft ' +
        'is not a draft or was pushed against a version that is no longer active.',
      params: { kind, version },
      body: PolicyActivateSchema,
      responses: {
        200: { description: 'The version, now active', schema: PolicyVersion },
        404: noVersion,
        409: 'Not a draft, or pushed against a version no longer active',
      },
    },
    async ({ params, body, auth, deps }) => {
      const row = await activatePolicy(deps.db, deps.policies, {
        tenantId: auth.tenantId,
        kind: params.kind,
        version: params.version,
        note: body.note,
        actor: actorOf(auth),
      });
      return ok(policyVersionView(row, { withSource: false }));
    },
  ),

  defineRoute(
    {
      method: 'post',
      path: '/v1/policies/{kind}/rollback',
      scope: 'policies:approve',
      summary: 'Make an earlier version that was active once the active version again',
      params: { kind },
      body: requiredBody(PolicyRollbackSchema),
      responses: {
        200: { description: 'The version, now active', schema: PolicyVersion },
        404: noVersion,
        409: 'The version is active already, or was never active',
      },
    },
    async ({ params, body, auth, deps }) => {
      const row = await rollbackPolicy(deps.db, deps.policies, {
        tenantId: auth.tenantId,
        kind: params.kind,
        toVersion: body.to_version,
        reason: body.reason,
        actor: actorOf(auth),
      });
      return ok(policyVersionView(row, { withSource: false }));
    },
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/policies/{kind}/audits',
      scope: READERS,
      summary: "The audit trail of a policy's pushes, activations and rollbacks (rows of the hash chain)",
      params: { kind },
      query: PageQuerySchema,
      responses: { 200: { description: 'A page of audit rows', schema: AuditPage } },
    },
    async ({ params, query, auth, deps }) =>
      ok(
        await auditTrailPage(
          deps.db,
          auth.tenantId,
          { taskId: policyAuditTaskId(params.kind), assertExists: async () => undefined },
          query,
        ),
      ),
  ),

  // Read-only: replays the tenant's archived events through a candidate and changes nothing.
  defineRoute(
    {
      method: 'post',
      path: '/v1/policies/backtests',
      scope: READERS,
      summary: "Replay the tenant's archived events through a candidate supervisor policy",
      description:
        'The candidate is `source` (YAML, validated) or a stored `version`. Answers with the transition matrix ' +
        '(recorded → candidate), findings gained and lost, tasks blocked earlier or later, and sample events.',
      body: requiredBody(BacktestRequestSchema),
      responses: {
        200: { description: 'The backtest report', schema: BacktestReportSchema },
        404: noVersion,
      },
    },
    async ({ body, auth, deps }) => {
      if ((body.source === undefined) === (body.version === undefined))
        throw new ValidationError('give exactly one of source and version', [
          { path: 'source', message: 'give exactly one of source and version' },
        ]);
      const window = parseLeadWindow(body.since, 'since');
      let source = body.source;
      if (body.version !== undefined) {
        const row = await findPolicyVersion(deps.db, auth.tenantId, 'supervisor', body.version);
        if (!row) throw new NotFoundError(`supervisor policy version ${body.version} not found`);
        source = row.source;
      }
      let candidate;
      try {
        candidate = parsePolicySource('supervisor', source!, 'candidate policy');
      } catch (error) {
        if (error instanceof ValidationError)
          throw new ValidationError(
            error.message,
            error.details.map((d) => ({ path: `source: ${d.path}`, message: d.message })),
          );
        throw error;
      }
      const since = new Date(Date.now() - window.ms);
      const backtest = new Backtest(candidate, builtInPolicies());
      const progress = await replayArchive(deps.db, { since, tenantId: auth.tenantId }, backtest);
      return ok({
        since: since.toISOString(),
        elapsed_ms: Math.round(progress.elapsedMs),
        ...backtest.report(),
      });
    },
  ),
];
