/**
 * Stored policy versions per tenant and kind: push a draft, activate it, roll back to an earlier active one,
 * and read what is active. SQL and row mapping only; the rules (who may activate what) are the caller's.
 */
import { sql, type Selectable } from 'kysely';
import type { PolicyKind } from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import type { PolicyVersionsTable } from './tables.js';

export type PolicyVersionRow = Selectable<PolicyVersionsTable>;
export type PolicyVersionSummary = Omit<PolicyVersionRow, 'source'>;

/** The audit trail (`task_id` of the audit rows) a tenant's policy changes of `kind` are filed under. */
export function policyAuditTaskId(kind: PolicyKind): string {
  return `policy:${kind}`;
}

const SUMMARY_COLUMNS = [
  'tenant_id',
  'kind',
  'version',
  'status',
  'file_version',
  'sha256',
  'note',
  'base_version',
  'diff',
  'pushed_by',
  'pushed_by_owner',
  'pushed_at',
  'activated_by',
  'activated_by_owner',
  'activated_at',
] as const;

/**
 * Serialises changes to one tenant's policies of one kind for the rest of the transaction, so version
 * numbers are handed out and activations happen one at a time.
 */
export async function lockPolicyKind(trx: QueryExecutor, tenantId: string, kind: PolicyKind): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`policy_versions/${tenantId}/${kind}`}, 0))`.execute(
    trx,
  );
}

export async function latestPolicyVersionNumber(
  db: QueryExecutor,
  tenantId: string,
  kind: PolicyKind,
): Promise<number> {
  const row = await db
    .selectFrom('policy_versions')
    .select((eb) => eb.fn.max('version').as('latest'))
    .where('tenant_id', '=', tenantId)
    .where('kind', '=', kind)
    .executeTakeFirst();
  return Number(row?.latest ?? 0);
}

export interface NewPolicyVersion {
  tenant_id: string;
  kind: PolicyKind;
  version: number;
  status: 'draft' | 'active';
  file_version: string;
  source: string;
  sha256: string;
  note: string | null;
  base_version: number | null;
  diff: string;
  pushed_by: string;
  pushed_by_owner: string;
  /** For a version stored active at once (the bootstrap version): who made it active. */
  activated_by?: string;
  activated_by_owner?: string;
}

export async function insertPolicyVersion(
  db: QueryExecutor,
  row: NewPolicyVersion,
): Promise<PolicyVersionRow> {
  return db
    .insertInto('policy_versions')
    .values({
      ...row,
      ...(row.status === 'active' ? { activated_at: sql<Date>`now()` } : {}),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

export async function findPolicyVersion(
  db: QueryExecutor,
  tenantId: string,
  kind: PolicyKind,
  version: number,
): Promise<PolicyVersionRow | undefined> {
  return db
    .selectFrom('policy_versions')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('kind', '=', kind)
    .where('version', '=', version)
    .executeTakeFirst();
}

export async function findActivePolicyVersion(
  db: QueryExecutor,
  tenantId: string,
  kind: PolicyKind,
): Promise<PolicyVersionRow | undefined> {
  return db
    .selectFrom('policy_versions')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('kind', '=', kind)
    .where('status', '=', 'active')
    .executeTakeFirst();
}

/** A tenant's versions of `kind`, newest first, without their sources. */
export async function listPolicyVersions(
  db: QueryExecutor,
  tenantId: string,
  kind: PolicyKind,
  limit: number,
): Promise<PolicyVersionSummary[]> {
  return db
    .selectFrom('policy_versions')
    .select(SUMMARY_COLUMNS)
    .where('tenant_id', '=', tenantId)
    .where('kind', '=', kind)
    .orderBy('version', 'desc')
    .limit(limit)
    .execute();
}

/**
 * Makes `version` the active one: the version active until now becomes `superseded`, and every other draft
 * `discarded` (their diffs were against a version that is no longer active). The caller holds
 * {@link lockPolicyKind} and has checked that `version` may be activated.
 */
export async function activatePolicyVersion(
  trx: QueryExecutor,
  key: { tenant_id: string; kind: PolicyKind; version: number },
  by: { by: string; owner: string },
): Promise<PolicyVersionRow> {
  await trx
    .updateTable('policy_versions')
    .set({ status: 'superseded' })
    .where('tenant_id', '=', key.tenant_id)
    .where('kind', '=', key.kind)
    .where('status', '=', 'active')
    .execute();
  await trx
    .updateTable('policy_versions')
    .set({ status: 'discarded' })
    .where('tenant_id', '=', key.tenant_id)
    .where('kind', '=', key.kind)
    .where('status', '=', 'draft')
    .where('version', '<>', key.version)
    .execute();
  return trx
    .updateTable('policy_versions')
    .set({
      status: 'active',
      activated_by: by.by,
      activated_by_owner: by.owner,
      activated_at: sql<Date>`now()`,
    })
    .where('tenant_id', '=', key.tenant_id)
    .where('kind', '=', key.kind)
    .where('version', '=', key.version)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** The active version of every tenant for `kind` (tenant and number only): what a service polls. */
export async function listActivePolicyVersionNumbers(
  db: QueryExecutor,
  kind: PolicyKind,
): Promise<Array<{ tenant_id: string; version: number }>> {
  return db
    .selectFrom('policy_versions')
    .select(['tenant_id', 'version'])
    .where('kind', '=', kind)
    .where('status', '=', 'active')
    .execute();
}

/** The given versions with their sources, for loading what became active. */
export async function findPolicyVersions(
  db: QueryExecutor,
  kind: PolicyKind,
  keys: ReadonlyArray<{ tenant_id: string; version: number }>,
): Promise<PolicyVersionRow[]> {
  if (keys.length === 0) return [];
  return db
    .selectFrom('policy_versions')
    .selectAll()
    .where('kind', '=', kind)
    .where((eb) =>
      eb.or(keys.map((k) => eb.and([eb('tenant_id', '=', k.tenant_id), eb('version', '=', k.version)]))),
    )
    .execute();
}
