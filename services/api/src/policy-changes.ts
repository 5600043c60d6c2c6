/**
 * Pushing, activating and rolling back stored policy versions (routes/policies.ts): each in one transaction
 * that holds the tenant's lock on the kind, validates, stores and appends to the audit hash chain; an
 * activation is announced on Redis after commit so every service reloads at once (they poll as well, so a
 * lost announcement delays a reload by a poll interval, never loses it).
 */
import { createHash } from 'node:crypto';
// A server or a cluster connection (REDIS_URL may name a Redis Cluster).
import type { RedisConnection as Redis } from '@warden/queue';
import {
  activatePolicyVersion,
  appendAudits,
  ensureTenant,
  findActivePolicyVersion,
  findPolicyVersion,
  insertPolicyVersion,
  latestPolicyVersionNumber,
  lockPolicyKind,
  policyAuditTaskId,
  type Db,
  type NewAudit,
  type PolicyVersionRow,
  type QueryExecutor,
} from '@warden/db';
import {
  activationRefusal,
  ConflictError,
  diffPolicySources,
  ForbiddenError,
  NotFoundError,
  parsePolicySource,
  POLICY_SCHEMAS,
  rollbackRefusal,
  storedPolicyVersionLabel,
  ValidationError,
  type Actor,
  type PolicyKind,
  type PolicyVersionView,
  type Refusal,
} from '@warden/domain';
import type { Logger } from '@warden/observability';
import { policyActivationChannel } from '@warden/queue';
import { loadPolicyFileWithSource } from '@warden/runtime';

/** A newly active version, as announced to the services. */
export interface PolicyActivation {
  tenant_id: string;
  kind: PolicyKind;
  version: number;
}

export interface ApiPolicyDeps {
  /** Each kind's bootstrap file text: stored as a tenant's version 1 at its first push. */
  bootstraps: Readonly<Record<PolicyKind, string>>;
  /** Tells the services a version became active; never throws (they poll too). */
  announce: (activation: PolicyActivation) => Promise<void>;
}

/** Reads and validates every bootstrap file at start-up; a bad one is a ConfigError naming the file and field. */
export async function loadBootstrapPolicies(
  files: Readonly<Record<PolicyKind, string>>,
): Promise<Record<PolicyKind, string>> {
  const entries = await Promise.all(
    (Object.keys(files) as PolicyKind[]).map(
      async (kind) =>
        [
          kind,
          (await loadPolicyFileWithSource(files[kind], POLICY_SCHEMAS[kind], `${kind} policy`)).source,
        ] as const,
    ),
  );
  return Object.fromEntries(entries) as Record<PolicyKind, string>;
}

export function createActivationAnnouncer(
  redis: Redis,
  prefix: string,
  logger: Logger,
): (activation: PolicyActivation) => Promise<void> {
  const channel = policyActivationChannel(prefix);
  return async (activation) => {
    try {
      await redis.publish(channel, JSON.stringify(activation));
    } catch (error) {
      logger.warn(
        { module: 'policies', action: 'announce', status: 'error', err: error, ...activation },
        'the activation is stored but could not be announced; services pick it up at their next poll',
      );
    }
  };
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

function refuse(refusal: Refusal | undefined): void {
  if (!refusal) return;
  throw refusal.kind === 'forbidden'
    ? new ForbiddenError(refusal.message)
    : new ConflictError(refusal.message);
}

function policyAudit(
  row: Pick<PolicyVersionRow, 'tenant_id' | 'kind'>,
  eventType: string,
  payload: Record<string, unknown>,
): NewAudit {
  return {
    tenant_id: row.tenant_id,
    task_id: policyAuditTaskId(row.kind),
    event_type: eventType,
    level: 'info',
    decision_id: null,
    event_id: null,
    source_event_ts: null,
    payload: { kind: row.kind, ...payload },
  };
}

/**
 * The active version, storing the bootstrap file as version 1 (active, by `bootstrap`) when the tenant has
 * no version of this kind yet: the first change then has a base to diff against and to roll back to.
 */
async function activeOrBootstrap(
  trx: QueryExecutor,
  tenantId: string,
  kind: PolicyKind,
  bootstrap: string,
): Promise<PolicyVersionRow | undefined> {
  const active = await findActivePolicyVersion(trx, tenantId, kind);
  if (active || (await latestPolicyVersionNumber(trx, tenantId, kind)) > 0) return active;
  const document = parsePolicySource(kind, bootstrap, `${kind} bootstrap policy`);
  const row = await insertPolicyVersion(trx, {
    tenant_id: tenantId,
    kind,
    version: 1,
    status: 'active',
    file_version: document.version,
    source: bootstrap,
    sha256: sha256(bootstrap),
    note: 'the bootstrap policy file',
    base_version: null,
    diff: '',
    pushed_by: 'bootstrap',
    pushed_by_owner: 'bootstrap',
    activated_by: 'bootstrap',
    activated_by_owner: 'bootstrap',
  });
  await appendAudits(trx, [
    policyAudit(row, 'POLICY_ACTIVATED', {
      version: 1,
      sha256: row.sha256,
      by: 'bootstrap',
      bootstrap: true,
    }),
  ]);
  return row;
}

/**
 * Validates `source` against its kind's schema and stores it as a draft, with its diff against the active
 * version. The source is refused (400, naming the line or field) before anything is stored.
 */
export async function pushPolicy(
  db: Db,
  deps: ApiPolicyDeps,
  input: {
    tenantId: string;
    kind: PolicyKind;
    source: string;
    note?: string | undefined;
    actor: Actor;
    /**
     * The sha256 of the active source the pushed one was derived from (a promotion): refused (409) when
     * another version became active meanwhile, so the draft never silently undoes that change.
     * @defaultValue none (pushed against whatever is active)
     */
    derivedFrom?: string;
    /** Recorded in the POLICY_PUSHED audit row as `promotion` (the evidence a promotion was pushed on). @defaultValue none */
    promotion?: Record<string, unknown>;
  },
): Promise<PolicyVersionRow> {
  let document: { version: string };
  try {
    document = parsePolicySource(input.kind, input.source, `${input.kind} policy`);
  } catch (error) {
    if (error instanceof ValidationError)
      throw new ValidationError(
        error.message,
        error.details.map((d) => ({ path: `source: ${d.path}`, message: d.message })),
      );
    throw error;
  }
  const digest = sha256(input.source);
  return db.transaction().execute(async (trx) => {
    await ensureTenant(trx, input.tenantId);
    await lockPolicyKind(trx, input.tenantId, input.kind);
    const active = await activeOrBootstrap(trx, input.tenantId, input.kind, deps.bootstraps[input.kind]);
    if (input.derivedFrom !== undefined && active?.sha256 !== input.derivedFrom)
      throw new ConflictError(
        `the active ${input.kind} policy changed while this draft was prepared from it; run the command again`,
      );
    if (active?.sha256 === digest)
      throw new ConflictError(
        `the pushed ${input.kind} policy is identical to the active version ${active.version}`,
      );
    const version = (await latestPolicyVersionNumber(trx, input.tenantId, input.kind)) + 1;
    const diff = diffPolicySources(active?.source ?? '', input.source, {
      before: active ? `version ${active.version}` : 'nothing',
      after: `version ${version}`,
    });
    const row = await insertPolicyVersion(trx, {
      tenant_id: input.tenantId,
      kind: input.kind,
      version,
      status: 'draft',
      file_version: document.version,
      source: input.source,
      sha256: digest,
      note: input.note ?? null,
      base_version: active?.version ?? null,
      diff: diff.text,
      pushed_by: input.actor.by,
      pushed_by_owner: input.actor.owner,
    });
    await appendAudits(trx, [
      policyAudit(row, 'POLICY_PUSHED', {
        version,
        base_version: row.base_version,
        sha256: digest,
        lines_added: diff.added,
        lines_removed: diff.removed,
        by: input.actor.by,
        owner: input.actor.owner,
        ...(input.note ? { note: input.note } : {}),
        ...(input.promotion ? { promotion: input.promotion } : {}),
      }),
    ]);
    return row;
  });
}

async function storedVersion(
  trx: QueryExecutor,
  tenantId: string,
  kind: PolicyKind,
  version: number,
): Promise<PolicyVersionRow> {
  const row = await findPolicyVersion(trx, tenantId, kind, version);
  if (!row) throw new NotFoundError(`${kind} policy version ${version} not found`);
  return row;
}

/**
 * Activates a draft: a `policies:approve` key of someone other than the pusher, and only while the version
 * it was pushed against is still the active one (see `activationRefusal`). Announced after commit.
 */
export async function activatePolicy(
  db: Db,
  deps: ApiPolicyDeps,
  input: { tenantId: string; kind: PolicyKind; version: number; note?: string | undefined; actor: Actor },
): Promise<PolicyVersionRow> {
  const row = await db.transaction().execute(async (trx) => {
    await lockPolicyKind(trx, input.tenantId, input.kind);
    const target = await storedVersion(trx, input.tenantId, input.kind, input.version);
    const active = await findActivePolicyVersion(trx, input.tenantId, input.kind);
    refuse(activationRefusal(target, active, input.actor));
    const activated = await activatePolicyVersion(trx, target, input.actor);
    await appendAudits(trx, [
      policyAudit(activated, 'POLICY_ACTIVATED', {
        version: activated.version,
        previous_version: active?.version ?? null,
        sha256: activated.sha256,
        pushed_by: activated.pushed_by,
        pushed_by_owner: activated.pushed_by_owner,
        by: input.actor.by,
        owner: input.actor.owner,
        ...(input.note ? { note: input.note } : {}),
      }),
    ]);
    return activated;
  });
  await deps.announce({ tenant_id: row.tenant_id, kind: row.kind, version: row.version });
  return row;
}

/** Makes an earlier version that was active once the active version again, with a reason. Announced after commit. */
export async function rollbackPolicy(
  db: Db,
  deps: ApiPolicyDeps,
  input: { tenantId: string; kind: PolicyKind; toVersion: number; reason: string; actor: Actor },
): Promise<PolicyVersionRow> {
  const row = await db.transaction().execute(async (trx) => {
    await lockPolicyKind(trx, input.tenantId, input.kind);
    const target = await storedVersion(trx, input.tenantId, input.kind, input.toVersion);
    const active = await findActivePolicyVersion(trx, input.tenantId, input.kind);
    refuse(rollbackRefusal(target));
    const activated = await activatePolicyVersion(trx, target, input.actor);
    await appendAudits(trx, [
      policyAudit(activated, 'POLICY_ROLLED_BACK', {
        version: activated.version,
        previous_version: active?.version ?? null,
        sha256: activated.sha256,
        reason: input.reason,
        by: input.actor.by,
        owner: input.actor.owner,
      }),
    ]);
    return activated;
  });
  await deps.announce({ tenant_id: row.tenant_id, kind: row.kind, version: row.version });
  return row;
}

/** The API's view of a stored version; the source only when asked for (lists leave it out). */
export function policyVersionView(
  row: Omit<PolicyVersionRow, 'source'> & { source?: string },
  options: { withSource: boolean },
): PolicyVersionView {
  return {
    tenant_id: row.tenant_id,
    kind: row.kind,
    version: row.version,
    status: row.status,
    file_version: row.file_version,
    version_label: storedPolicyVersionLabel(row.file_version, row.version),
    sha256: row.sha256,
    note: row.note,
    base_version: row.base_version,
    diff: row.diff,
    pushed_by: row.pushed_by,
    pushed_by_owner: row.pushed_by_owner,
    pushed_at: row.pushed_at.toISOString(),
    activated_by: row.activated_by,
    activated_by_owner: row.activated_by_owner,
    activated_at: row.activated_at ? row.activated_at.toISOString() : null,
    ...(options.withSource && row.source !== undefined ? { source: row.source } : {}),
  };
}
