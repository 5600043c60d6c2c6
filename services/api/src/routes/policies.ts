/**
 * Stored policy versions (`/v1/policies`): push a draft (validated, with its diff against the active
 * version), read versions, activate a draft with a second person's `policies:approve` key, roll back to an
 * earlier version, and read the audit trail of the changes; promote an event type from monitor to enforce on
 * the evidence of its monitor-mode decisions (policy-promotion.ts). See docs/supervisor.md, "Changing a policy".
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
  PromotionQuerySchema,
  PromotionRequestSchema,
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
import { promotePolicy, promotionEvidence } from '../policy-promotion.js';

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

const DecisionCounts = z.record(z.string(), z.number());
const PromotionEvidenceSchema = z
  .object({
    tenant_id: z.string(),
    event_type: z.string(),
    since: z.string(),
    window_start: z.string(),
    max_rate: z.number().meta({ description: 'The threshold as a fraction (0.01 for 1%)' }),
    active_version: z.number().int().nullable(),
    enforcement: z.object({
      mode: z.enum(['enforce', 'monitor']),
      by: z.enum(['tenant', 'event_type', 'default']),
    }),
    summary: z.object({
      decisions: z.number().meta({ description: 'Decisions of the type recorded in monitor mode' }),
      would_have: DecisionCounts.meta({
        description: 'What enforcement would have decided, per decision type',
      }),
      changed: z.number(),
      stopped: z.number().meta({ description: 'Decisions enforcement would have made BLOCK or PAUSE' }),
      stop_rate: z.number(),
      top_findings: z.array(z.object({ code: z.string(), count: z.number() })),
      samples: z.array(
        z.object({
          task_id: z.string(),
          event_id: z.string(),
          decision_id: z.string(),
          would_have: z.string(),
        }),
      ),
    }),
    verdict: z.object({ passes: z.boolean(), reason: z.string() }),
    diff: z.string().meta({ description: 'What the draft changes in the active policy' }),
  })
  .meta({ id: 'PolicyPromotionEvidence' });
const PromotionOutcomeSchema = PromotionEvidenceSchema.extend({
  accepted: z.boolean(),
  draft: PolicyVersion.nullable().meta({ description: 'The stored draft; null when refused' }),
}).meta({ id: 'PolicyPromotion' });

const nothingToPromote =
  'The event type is enforced for the tenant already, the tenant itself is set to monitor, or the active policy changed meanwhile';

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

  // Read-only: what enforcing the event type would have done, and the draft it would push.
  defineRoute(
    {
      method: 'get',
      path: '/v1/policies/supervisor/promotions/evidence',
      scope: READERS,
      summary: 'What enforcing an event type would have done to its decisions recorded in monitor mode',
      description:
        'Counts what enforcement would have decided over the window, the share it would have blocked or paused, ' +
        'the commonest finding codes, sample decisions, the verdict against `max_rate` and the diff of the draft ' +
        'a promotion would push. Stores nothing.',
      query: PromotionQuerySchema,
      responses: {
        200: { description: 'The evidence', schema: PromotionEvidenceSchema },
        409: nothingToPromote,
      },
    },
    async ({ query, auth, deps }) =>
      ok(await promotionEvidence(deps.db, deps.policies, auth.tenantId, query)),
  ),

  defineRoute(
    {
      method: 'post',
      path: '/v1/policies/supervisor/promotions',
      scope: 'policies:write',
      summary:
        'Push the active supervisor policy with one event type switched from monitor to enforce, on evidence',
      description:
        'The draft is stored (201) only when the share of monitor-mode decisions enforcement would have blocked or ' +
        'paused is at most `max_rate`, or with `accept: true`; the verdict is its note and the evidence is recorded ' +
        'in its POLICY_PUSHED audit row. Otherwise nothing is stored (200, `draft: null`). Activation stays a ' +
        "second person's `policies:approve` step.",
      body: requiredBody(PromotionRequestSchema),
      responses: {
        201: { description: 'The evidence and the stored draft', schema: PromotionOutcomeSchema },
        200: { description: 'The evidence; no draft stored', schema: PromotionOutcomeSchema },
        409: nothingToPromote,
      },
    },
    async ({ body, auth, deps }) => {
      const outcome = await promotePolicy(deps.db, deps.policies, {
        ...body,
        tenantId: auth.tenantId,
        actor: actorOf(auth),
      });
      return reply(outcome.draft ? 201 : 200, outcome);
    },
  ),
];
