/**
 * Promoting an event type from monitor to enforce (routes/policies.ts, `warden policy promote`): reads what
 * enforcement would have done to the tenant's monitor-mode decisions of that type, and pushes the active
 * supervisor policy with the type switched to `enforce` as a draft, only within the threshold or when the
 * person accepts the evidence. The draft is activated like any other: by a second person's key.
 */
import { findActivePolicyVersion, readMonitoredDecisions, type Db } from '@warden/db';
import {
  assertKnownEventType,
  diffPolicySources,
  enforceEventType,
  enforcementOf,
  ForbiddenError,
  formatRate,
  parsePolicySource,
  parsePromotionInputs,
  promotionVerdict,
  sha256Hex,
  WouldHaveSummarizer,
  type Actor,
  type PromotionEvidence,
  type PromotionOutcome,
} from '@warden/domain';
import { policyVersionView, pushPolicy, type ApiPolicyDeps } from './policy-changes.js';

interface PromotionInput {
  event_type: string;
  since: string;
  max_rate: string;
  tenant_id?: string | undefined;
}

/** A key acts for its own tenant only: a different `tenant_id` is refused rather than silently ignored. */
function assertOwnTenant(tenantId: string, input: PromotionInput): void {
  if (input.tenant_id !== undefined && input.tenant_id !== tenantId)
    throw new ForbiddenError(
      `this key acts for tenant ${tenantId}, not ${input.tenant_id}: use a key of that tenant`,
    );
}

async function prepare(
  db: Db,
  deps: ApiPolicyDeps,
  tenantId: string,
  input: PromotionInput,
): Promise<PromotionEvidence & { source: string; baseSha256: string }> {
  assertOwnTenant(tenantId, input);
  const { since, windowMs, maxRate } = parsePromotionInputs(input);
  const active = await findActivePolicyVersion(db, tenantId, 'supervisor');
  const base = active?.source ?? deps.bootstraps.supervisor;
  const enforcement = enforcementOf(
    parsePolicySource('supervisor', base, 'the active supervisor policy'),
    tenantId,
    input.event_type,
  );
  const windowStart = new Date(Date.now() - windowMs);
  const summarizer = new WouldHaveSummarizer();
  await readMonitoredDecisions(db, { tenantId, eventType: input.event_type, since: windowStart }, (d) =>
    summarizer.add(d),
  );
  const summary = summarizer.summary();
  // A typo is a 400 naming event_type; then a type enforced already (or a tenant-wide monitor) is a 409.
  assertKnownEventType(input.event_type, summary.decisions);
  const source = enforceEventType(base, { tenantId, eventType: input.event_type });
  return {
    tenant_id: tenantId,
    event_type: input.event_type,
    since,
    window_start: windowStart.toISOString(),
    max_rate: maxRate,
    active_version: active?.version ?? null,
    enforcement,
    summary,
    verdict: promotionVerdict(summary, { eventType: input.event_type, since, maxRate }),
    diff: diffPolicySources(base, source, {
      before: active ? `version ${active.version}` : 'the bootstrap policy',
      after: 'the promoted draft',
    }).text,
    source,
    baseSha256: sha256Hex(base),
  };
}

/** The evidence alone: nothing is stored. */
export async function promotionEvidence(
  db: Db,
  deps: ApiPolicyDeps,
  tenantId: string,
  input: PromotionInput,
): Promise<PromotionEvidence> {
  const { source: _source, baseSha256: _base, ...evidence } = await prepare(db, deps, tenantId, input);
  return evidence;
}

/**
 * Pushes the promoted draft when the verdict passes or `accept` is given; the verdict's reason (and whether
 * it was accepted above the threshold, and by whom) is the draft's note, and the evidence goes into the
 * POLICY_PUSHED audit row. Otherwise stores nothing and answers the evidence with `draft: null`.
 */
export async function promotePolicy(
  db: Db,
  deps: ApiPolicyDeps,
  input: PromotionInput & { tenantId: string; accept: boolean; note?: string | undefined; actor: Actor },
): Promise<PromotionOutcome> {
  const { source, baseSha256, ...evidence } = await prepare(db, deps, input.tenantId, input);
  const accepted = !evidence.verdict.passes && input.accept;
  if (!evidence.verdict.passes && !accepted) return { ...evidence, accepted: false, draft: null };
  const note = [
    `promote ${input.event_type} to enforce: ${evidence.verdict.reason}`,
    ...(accepted ? [`accepted by ${input.actor.owner} regardless`] : []),
    ...(input.note ? [input.note] : []),
  ].join('; ');
  const row = await pushPolicy(db, deps, {
    tenantId: input.tenantId,
    kind: 'supervisor',
    source,
    note,
    actor: input.actor,
    derivedFrom: baseSha256,
    promotion: {
      event_type: evidence.event_type,
      since: evidence.since,
      window_start: evidence.window_start,
      max_rate: formatRate(evidence.max_rate),
      decisions: evidence.summary.decisions,
      would_have: evidence.summary.would_have,
      stopped: evidence.summary.stopped,
      stop_rate: evidence.summary.stop_rate,
      top_findings: evidence.summary.top_findings,
      samples: evidence.summary.samples,
      passes: evidence.verdict.passes,
      accepted,
    },
  });
  return { ...evidence, accepted, draft: policyVersionView(row, { withSource: false }) };
}
