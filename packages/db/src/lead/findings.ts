/**
 * The `lead_findings` repository: findings deduplicated by fingerprint, their views and lists, and the writes
 * a scan or a person makes to them. SQL and row mapping only: which finding is new, reopened or silenced,
 * when a follow-up is due and what gets audited is decided in @warden/lead-engine.
 */
import { sql, type Insertable } from 'kysely';
import type {
  LeadEvidence,
  LeadFindingDraft,
  LeadFindingStatus,
  LeadFindingView,
  Page,
  Severity,
  StoredLeadFindingState,
} from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import { keysetPage } from './keyset-page.js';
import { recordNotifications, type NewNotification } from '../notifications/outbox.js';

/** Findings a person hears about as they open or come back: the two highest severities. */
const NOTIFIED_SEVERITIES: readonly Severity[] = ['CRITICAL', 'HIGH'];

function findingNotification(
  tenantId: string,
  type: 'finding.opened' | 'finding.regressed',
  finding: { fingerprint: string; code: string; severity: Severity; title: string },
  now: Date,
): NewNotification {
  return {
    tenant_id: tenantId,
    event_type: type,
    subject: { kind: 'finding', id: finding.fingerprint },
    summary: `${finding.severity} finding ${type === 'finding.opened' ? 'opened' : 'came back after it was resolved'}: ${finding.title} (${finding.code})`,
    details: { fingerprint: finding.fingerprint, code: finding.code, severity: finding.severity },
    occurred_at: now,
  };
}
import type { LeadFindingRow, LeadFindingsTable } from './tables.js';

export function toLeadFindingView(row: LeadFindingRow): LeadFindingView {
  return {
    fingerprint: row.fingerprint,
    code: row.code,
    severity: row.severity as Severity,
    title: row.title,
    description: row.description,
    window_kind: row.window_kind,
    dimensions: row.dimensions,
    status: row.status as LeadFindingStatus,
    count: row.count,
    first_seen_at: row.first_seen_at.toISOString(),
    last_seen_at: row.last_seen_at.toISOString(),
    evidence: row.evidence,
    linked_task_id: row.linked_task_id,
    resolved_at: row.resolved_at?.toISOString() ?? null,
    resolved_by: row.resolved_by,
    silenced_until: row.silenced_until?.toISOString() ?? null,
    silenced_by: row.silenced_by,
    note: row.note,
    last_scan_id: row.last_scan_id,
  };
}

export async function findLeadFinding(
  db: QueryExecutor,
  tenantId: string,
  fingerprint: string,
): Promise<LeadFindingView | undefined> {
  const row = await readLeadFindingRow(db, tenantId, fingerprint);
  return row ? toLeadFindingView(row) : undefined;
}

/** One finding's row; `forUpdate` locks it until the caller's transaction ends. */
export async function readLeadFindingRow(
  db: QueryExecutor,
  tenantId: string,
  fingerprint: string,
  options: { forUpdate?: boolean } = {},
): Promise<LeadFindingRow | undefined> {
  let query = db
    .selectFrom('lead_findings')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('fingerprint', '=', fingerprint);
  if (options.forUpdate) query = query.forUpdate();
  return query.executeTakeFirst();
}

export interface LeadFindingFilter {
  severity?: Severity;
  status?: LeadFindingStatus;
  /** true: only findings without a follow-up task; false: only linked ones. */
  unlinked?: boolean;
  code?: string;
}

/** A tenant's findings, most recently seen first, keyset-paginated on (last_seen_at, fingerprint). */
export async function listLeadFindings(
  db: QueryExecutor,
  tenantId: string,
  options: LeadFindingFilter & { limit: number; after?: { last_seen_at: string; fingerprint: string } },
): Promise<Page<LeadFindingView>> {
  let query = db
    .selectFrom('lead_findings')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('last_seen_at', 'desc')
    .orderBy('fingerprint', 'desc')
    .limit(options.limit + 1);
  if (options.severity) query = query.where('severity', '=', options.severity);
  if (options.status) query = query.where('status', '=', options.status);
  if (options.code) query = query.where('code', '=', options.code);
  if (options.unlinked === true) query = query.where('linked_task_id', 'is', null);
  if (options.unlinked === false) query = query.where('linked_task_id', 'is not', null);
  if (options.after) {
    const { last_seen_at, fingerprint } = options.after;
    query = query.where((eb) =>
      eb.or([
        eb('last_seen_at', '<', new Date(last_seen_at)),
        eb.and([eb('last_seen_at', '=', new Date(last_seen_at)), eb('fingerprint', '<', fingerprint)]),
      ]),
    );
  }
  return keysetPage(await query.execute(), options.limit, toLeadFindingView, (last) => ({
    last_seen_at: last.last_seen_at.toISOString(),
    fingerprint: last.fingerprint,
  }));
}

/**
 * Serializes the lead miner's writes for one tenant until the transaction ends (an advisory lock), so two
 * scans run with `--force` cannot both decide a finding is new, or both link it.
 */
export async function lockLeadTenant(trx: QueryExecutor, tenantId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${'lead-findings:' + tenantId}, 0))`.execute(trx);
}

/** The stored state of these fingerprints (locked FOR UPDATE when `trx` is a transaction that asks for it). */
export async function readLeadFindingStates(
  db: QueryExecutor,
  tenantId: string,
  fingerprints: readonly string[],
  options: { forUpdate?: boolean } = {},
): Promise<Map<string, StoredLeadFindingState>> {
  if (fingerprints.length === 0) return new Map();
  let query = db
    .selectFrom('lead_findings')
    .select(['fingerprint', 'status', 'linked_task_id', 'silenced_until'])
    .where('tenant_id', '=', tenantId)
    .where('fingerprint', 'in', [...fingerprints])
    .orderBy('fingerprint');
  if (options.forUpdate) query = query.forUpdate();
  const rows = await query.execute();
  return new Map(
    rows.map((row) => [
      row.fingerprint,
      {
        status: row.status as LeadFindingStatus,
        linked_task_id: row.linked_task_id,
        silenced_until: row.silenced_until,
      },
    ]),
  );
}

/**
 * Stores findings never seen before: open, seen once, first and last seen `now`. A CRITICAL or HIGH one gets
 * its `finding.opened` notification in the same transaction.
 */
export async function insertLeadFindings(
  trx: QueryExecutor,
  tenantId: string,
  drafts: readonly LeadFindingDraft[],
  context: { now: Date; scanId: string | null },
): Promise<void> {
  if (drafts.length === 0) return;
  const rows: Array<Insertable<LeadFindingsTable>> = drafts.map((draft) => ({
    tenant_id: tenantId,
    fingerprint: draft.fingerprint,
    code: draft.rule_code,
    severity: draft.severity,
    title: draft.title,
    description: draft.description,
    window_kind: draft.window_kind,
    dimensions: JSON.stringify(draft.dimensions),
    first_seen_at: context.now,
    last_seen_at: context.now,
    evidence: JSON.stringify(draft.evidence),
    status: 'open',
    last_scan_id: context.scanId,
  }));
  await trx.insertInto('lead_findings').values(rows).execute();
  await recordNotifications(
    trx,
    drafts
      .filter((draft) => NOTIFIED_SEVERITIES.includes(draft.severity))
      .map((draft) =>
        findingNotification(tenantId, 'finding.opened', { ...draft, code: draft.rule_code }, context.now),
      ),
  );
}

/** A stored finding seen again by a scan, and what that changes. */
export interface LeadFindingSighting {
  fingerprint: string;
  status: LeadFindingStatus;
  /** Clear `silenced_until` / `silenced_by` (the silence ran out). */
  clearSilence: boolean;
  /** Clear `resolved_at` / `resolved_by` (a resolved finding came back). */
  clearResolution: boolean;
  severity: Severity;
  title: string;
  description: string;
  evidence: LeadEvidence;
}

/**
 * Records sightings of stored findings in one statement: count + 1, last_seen_at, evidence, severity, title,
 * description and status replaced; first_seen_at and linked_task_id are never touched. A resolved CRITICAL or
 * HIGH finding that came back gets its `finding.regressed` notification in the same transaction.
 */
export async function recordLeadFindingSightings(
  trx: QueryExecutor,
  tenantId: string,
  sightings: readonly LeadFindingSighting[],
  context: { now: Date; scanId: string | null },
): Promise<void> {
  if (sightings.length === 0) return;
  const updates = sightings.map((s) => ({
    fingerprint: s.fingerprint,
    status: s.status,
    lift_silence: s.clearSilence,
    reopen: s.clearResolution,
    severity: s.severity,
    title: s.title,
    description: s.description,
    evidence: s.evidence,
  }));
  await sql`
    update lead_findings as f
       set count = f.count + 1,
           last_seen_at = ${context.now},
           evidence = u.evidence,
           severity = u.severity,
           title = u.title,
           description = u.description,
           status = u.status,
           silenced_until = case when u.lift_silence then null else f.silenced_until end,
           silenced_by = case when u.lift_silence then null else f.silenced_by end,
           resolved_at = case when u.reopen then null else f.resolved_at end,
           resolved_by = case when u.reopen then null else f.resolved_by end,
           last_scan_id = ${context.scanId}::uuid,
           updated_at = now()
      from jsonb_to_recordset(${JSON.stringify(updates)}::jsonb)
           as u(fingerprint text, status text, lift_silence boolean, reopen boolean, severity text, title text, description text, evidence jsonb)
     where f.tenant_id = ${tenantId} and f.fingerprint = u.fingerprint`.execute(trx);
  const regressed = sightings.filter((s) => s.clearResolution && NOTIFIED_SEVERITIES.includes(s.severity));
  if (regressed.length === 0) return;
  const codes = await trx
    .selectFrom('lead_findings')
    .select(['fingerprint', 'code'])
    .where('tenant_id', '=', tenantId)
    .where(
      'fingerprint',
      'in',
      regressed.map((s) => s.fingerprint),
    )
    .execute();
  const codeOf = new Map(codes.map((row) => [row.fingerprint, row.code]));
  await recordNotifications(
    trx,
    regressed.map((s) =>
      findingNotification(
        tenantId,
        'finding.regressed',
        {
          fingerprint: s.fingerprint,
          code: codeOf.get(s.fingerprint) ?? 'unknown',
          severity: s.severity,
          title: s.title,
        },
        context.now,
      ),
    ),
  );
}

/** What a person's decision (resolve, silence) or a new follow-up task (the link) changes on a finding. */
export type LeadFindingChange = Partial<
  Pick<
    LeadFindingRow,
    'status' | 'resolved_at' | 'resolved_by' | 'silenced_until' | 'silenced_by' | 'note' | 'linked_task_id'
  >
>;

/** Applies a change to one finding and returns it as it is now. */
export async function updateLeadFinding(
  trx: QueryExecutor,
  tenantId: string,
  fingerprint: string,
  change: LeadFindingChange,
): Promise<LeadFindingView> {
  const row = await trx
    .updateTable('lead_findings')
    .set({ ...change, updated_at: sql<Date>`now()` })
    .where('tenant_id', '=', tenantId)
    .where('fingerprint', '=', fingerprint)
    .returningAll()
    .executeTakeFirstOrThrow();
  return toLeadFindingView(row);
}
