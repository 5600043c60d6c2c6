import { sql } from 'kysely';
import {
  encodeCursor,
  leadFollowUpTask,
  leadFollowUpTaskId,
  LEAD_FOLLOW_UP_KIND,
  type LeadFindingDraft,
  type LeadFindingStatus,
  type LeadFindingUpsertPlan,
  type LeadFindingView,
  type LeadScanStatus,
  type LeadScanTrigger,
  type LeadScanView,
  type LeadScanWarning,
  type Page,
  type Severity,
  type StoredLeadFindingState,
} from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import type { LeadFindingRow, LeadScanRow } from './tables.js';
import { appendAudits, type NewAudit } from '../core/audits.js';


// ── lead_scans ──────────────────────────────────────────────────────────────────────────────────────────

export interface NewLeadScan {
  tenantId: string;
  windowKind: string;
  status: Extract<LeadScanStatus, 'queued' | 'running' | 'skipped'>;
  trigger: LeadScanTrigger;
  dryRun: boolean;
  forced: boolean;
  requestedBy?: string | null;
  window?: { start: Date; end: Date };
  rulesVersion?: string;
  /** For a scan recorded as finished at once (skipped). */
  error?: string;
}

/** Records a scan: `queued` (API, before the job runs), `running` (started here), or `skipped`. Returns its id. */
export async function insertLeadScan(db: QueryExecutor, scan: NewLeadScan): Promise<string> {
  const running = scan.status === 'running';
  const finished = scan.status === 'skipped';
  const row = await db
    .insertInto('lead_scans')
    .values({
      tenant_id: scan.tenantId,
      window_kind: scan.windowKind,
      status: scan.status,
      trigger: scan.trigger,
      dry_run: scan.dryRun,
      forced: scan.forced,
      requested_by: scan.requestedBy ?? null,
      window_start: scan.window?.start ?? null,
      window_end: scan.window?.end ?? null,
      rules_version: scan.rulesVersion ?? null,
      started_at: running || finished ? sql<Date>`now()` : null,
      heartbeat_at: running ? sql<Date>`now()` : null,
      completed_at: finished ? sql<Date>`now()` : null,
      error: scan.error ?? null,
    })
    .returning('scan_id')
    .executeTakeFirstOrThrow();
  return row.scan_id;
}

/**
 * Takes a queued scan (or one whose runner stopped beating `staleAfterMs` ago) and marks it running. Returns
 * false when it is finished or running elsewhere: a redelivered job then does nothing.
 */
export async function claimLeadScan(
  db: QueryExecutor,
  scan: {
    tenantId: string;
    scanId: string;
    window: { start: Date; end: Date };
    rulesVersion: string;
    staleAfterMs: number;
  },
): Promise<boolean> {
  const result = await db
    .updateTable('lead_scans')
    .set({
      status: 'running',
      started_at: sql<Date>`now()`,
      heartbeat_at: sql<Date>`now()`,
      window_start: scan.window.start,
      window_end: scan.window.end,
      rules_version: scan.rulesVersion,
    })
    .where('tenant_id', '=', scan.tenantId)
    .where('scan_id', '=', scan.scanId)
    .where((eb) =>
      eb.or([
        eb('status', '=', 'queued'),
        eb.and([
          eb('status', '=', 'running'),
          eb(
            'heartbeat_at',
            '<',
            sql<Date>`now() - ${scan.staleAfterMs}::double precision * interval '1 millisecond'`,
          ),
        ]),
      ]),
    )
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Shows the scan is alive (its heartbeat), with the counters so far. */
export async function touchLeadScan(db: QueryExecutor, scanId: string): Promise<void> {
  await db
    .updateTable('lead_scans')
    .set({ heartbeat_at: sql<Date>`now()` })
    .where('scan_id', '=', scanId)
    .where('status', '=', 'running')
    .execute();
}

export interface LeadScanOutcome {
  status: Extract<LeadScanStatus, 'completed' | 'failed' | 'skipped'>;
  stats: Record<string, unknown>;
  warnings: LeadScanWarning[];
  error: string | null;
}

/**
 * Records how a scan ended. `fromStatuses` limits it to a scan still in one of them (a redelivered job must
 * not turn a completed scan into a skipped one). Returns whether the row changed.
 */
export async function finishLeadScan(
  db: QueryExecutor,
  scanId: string,
  outcome: LeadScanOutcome,
  fromStatuses?: readonly LeadScanStatus[],
): Promise<boolean> {
  let query = db
    .updateTable('lead_scans')
    .set({
      status: outcome.status,
      completed_at: sql<Date>`now()`,
      heartbeat_at: null,
      stats: JSON.stringify(outcome.stats),
      warnings: JSON.stringify(outcome.warnings),
      error: outcome.error,
    })
    .where('scan_id', '=', scanId);
  if (fromStatuses) query = query.where('status', 'in', [...fromStatuses]);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/**
 * Marks as failed the scans of a tenant and window whose process died: `running` with a heartbeat older than
 * `staleAfterMs`, or `queued` for longer than `queuedTooLongMs` (the job was lost). Returns how many.
 */
export async function failAbandonedLeadScans(
  db: QueryExecutor,
  tenantId: string,
  windowKind: string,
  staleAfterMs: number,
  queuedTooLongMs: number,
): Promise<number> {
  const result = await db
    .updateTable('lead_scans')
    .set({
      status: 'failed',
      completed_at: sql<Date>`now()`,
      heartbeat_at: null,
      error: sql<string>`case when status = 'running' then 'abandoned: the scanning process stopped before it finished' else 'never started: the queued job was lost' end`,
    })
    .where('tenant_id', '=', tenantId)
    .where('window_kind', '=', windowKind)
    .where((eb) =>
      eb.or([
        eb.and([
          eb('status', '=', 'running'),
          eb(
            'heartbeat_at',
            '<',
            sql<Date>`now() - ${staleAfterMs}::double precision * interval '1 millisecond'`,
          ),
        ]),
        eb.and([
          eb('status', '=', 'queued'),
          eb(
            'created_at',
            '<',
            sql<Date>`now() - ${queuedTooLongMs}::double precision * interval '1 millisecond'`,
          ),
        ]),
      ]),
    )
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export function toLeadScanView(row: LeadScanRow): LeadScanView {
  return {
    scan_id: row.scan_id,
    window_kind: row.window_kind,
    window:
      row.window_start && row.window_end
        ? { start: row.window_start.toISOString(), end: row.window_end.toISOString() }
        : null,
    status: row.status as LeadScanStatus,
    trigger: row.trigger as LeadScanTrigger,
    dry_run: row.dry_run,
    forced: row.forced,
    requested_by: row.requested_by,
    created_at: row.created_at.toISOString(),
    started_at: row.started_at?.toISOString() ?? null,
    completed_at: row.completed_at?.toISOString() ?? null,
    stats: row.stats,
    warnings: row.warnings,
    error: row.error,
  };
}

export async function findLeadScan(
  db: QueryExecutor,
  tenantId: string,
  scanId: string,
): Promise<LeadScanView | undefined> {
  const row = await db
    .selectFrom('lead_scans')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('scan_id', '=', scanId)
    .executeTakeFirst();
  return row ? toLeadScanView(row) : undefined;
}

/** A tenant's scans, newest first, keyset-paginated on (created_at, scan_id). */
export async function listLeadScans(
  db: QueryExecutor,
  tenantId: string,
  options: {
    limit: number;
    after?: { created_at: string; scan_id: string };
    status?: LeadScanStatus;
    windowKind?: string;
  },
): Promise<Page<LeadScanView>> {
  let query = db
    .selectFrom('lead_scans')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('created_at', 'desc')
    .orderBy('scan_id', 'desc')
    .limit(options.limit + 1);
  if (options.status) query = query.where('status', '=', options.status);
  if (options.windowKind) query = query.where('window_kind', '=', options.windowKind);
  if (options.after) {
    const { created_at, scan_id } = options.after;
    query = query.where((eb) =>
      eb.or([
        eb('created_at', '<', new Date(created_at)),
        eb.and([eb('created_at', '=', new Date(created_at)), eb('scan_id', '<', scan_id)]),
      ]),
    );
  }
  const rows = await query.execute();
  const page = rows.slice(0, options.limit);
  const last = page.at(-1);
  return {
    items: page.map(toLeadScanView),
    next_cursor:
      rows.length > options.limit && last
        ? encodeCursor({ created_at: last.created_at.toISOString(), scan_id: last.scan_id })
        : null,
  };
}

/** Tenants a scan of "every tenant" covers: those with API keys and those with an audit trail. */
export async function listLeadScanTenants(db: QueryExecutor): Promise<string[]> {
  const rows = await sql<{ tenant_id: string }>`
    select tenant_id from tenants union select tenant_id from audit_chain_heads order by tenant_id`.execute(
    db,
  );
  return rows.rows.map((r) => r.tenant_id);
}

// ── lead_findings ───────────────────────────────────────────────────────────────────────────────────────

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
  const row = await db
    .selectFrom('lead_findings')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('fingerprint', '=', fingerprint)
    .executeTakeFirst();
  return row ? toLeadFindingView(row) : undefined;
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
  const rows = await query.execute();
  const page = rows.slice(0, options.limit);
  const last = page.at(-1);
  return {
    items: page.map(toLeadFindingView),
    next_cursor:
      rows.length > options.limit && last
        ? encodeCursor({ last_seen_at: last.last_seen_at.toISOString(), fingerprint: last.fingerprint })
        : null,
  };
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

export interface PlannedLeadFinding {
  draft: LeadFindingDraft;
  plan: LeadFindingUpsertPlan;
  /** The stored link, when the finding existed. */
  linked_task_id: string | null;
}

/**
 * Writes one batch of raw findings as planned by `planLeadFindingUpsert`: inserts the new ones; for the others
 * count + 1, last_seen_at, evidence (and title, description, severity) replaced, status as planned —
 * first_seen_at and linked_task_id are never touched. A reopened finding (a regression) and a silence that
 * ran out are audited on the finding's follow-up task.
 */
export async function storeLeadFindings(
  trx: QueryExecutor,
  tenantId: string,
  planned: readonly PlannedLeadFinding[],
  context: { now: Date; scanId: string | null },
): Promise<void> {
  const fresh = planned.filter((p) => p.plan.outcome === 'new');
  const seen = planned.filter((p) => p.plan.outcome !== 'new');
  if (fresh.length > 0) {
    await trx
      .insertInto('lead_findings')
      .values(
        fresh.map(({ draft }) => ({
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
        })),
      )
      .execute();
  }
  if (seen.length > 0) {
    const updates = seen.map(({ draft, plan }) => ({
      fingerprint: draft.fingerprint,
      status: plan.status,
      lift_silence: plan.silence_expired,
      reopen: plan.outcome === 'reopened',
      severity: draft.severity,
      title: draft.title,
      description: draft.description,
      evidence: draft.evidence,
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
  }
  const audits: NewAudit[] = planned
    .filter(({ plan }) => plan.outcome === 'reopened' || plan.silence_expired)
    .map(({ draft, plan, linked_task_id }) => ({
      tenant_id: tenantId,
      task_id: linked_task_id ?? leadFollowUpTaskId(draft.fingerprint),
      event_type: plan.outcome === 'reopened' ? 'LEAD_FINDING_REOPENED' : 'LEAD_FINDING_SILENCE_EXPIRED',
      level: plan.outcome === 'reopened' ? 'warn' : 'info',
      decision_id: null,
      event_id: null,
      source_event_ts: null,
      payload: {
        fingerprint: draft.fingerprint,
        code: draft.rule_code,
        severity: draft.severity,
        title: draft.title,
        window_kind: draft.window_kind,
        reason:
          plan.outcome === 'reopened'
            ? 'a resolved finding was seen again (regression)'
            : 'the silence ran out and the finding was seen again',
        scan_id: context.scanId,
      },
    }));
  await appendAudits(trx, audits, context.now);
}

export type LinkLeadFollowUpResult =
  | { status: 'created'; task_id: string }
  /** Linked meanwhile (another scan), or no longer open: nothing done. */
  | { status: 'not_needed'; task_id: string | null }
  /** A task with the derived id exists and is not this finding's follow-up: refused rather than taken over. */
  | { status: 'conflict'; task_id: string };

/**
 * Creates a finding's follow-up task and links it, with its `LEAD_FINDING_LINKED` audit row — all in the
 * caller's transaction, so a task never exists without its link (or the link without its task). Locks the
 * finding row first and re-checks it is open and unlinked.
 */
export async function createLeadFollowUp(
  trx: QueryExecutor,
  tenantId: string,
  fingerprint: string,
  context: { now: Date; scanId: string | null },
): Promise<LinkLeadFollowUpResult> {
  const row = await trx
    .selectFrom('lead_findings')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('fingerprint', '=', fingerprint)
    .forUpdate()
    .executeTakeFirst();
  if (!row || row.linked_task_id !== null || row.status !== 'open')
    return { status: 'not_needed', task_id: row?.linked_task_id ?? null };
  const task = leadFollowUpTask(
    {
      fingerprint: row.fingerprint,
      rule_code: row.code,
      severity: row.severity as Severity,
      title: row.title,
      description: row.description,
      window_kind: row.window_kind,
      dimensions: row.dimensions,
      evidence: row.evidence,
      first_seen_at: row.first_seen_at.toISOString(),
    },
    { scan_id: context.scanId },
  );
  const inserted = await trx
    .insertInto('tasks')
    .values({
      tenant_id: tenantId,
      task_id: task.task_id,
      status: task.status,
      metadata: JSON.stringify(task.metadata),
    })
    .onConflict((oc) => oc.columns(['tenant_id', 'task_id']).doNothing())
    .returning('task_id')
    .executeTakeFirst();
  if (!inserted) {
    const existing = await trx
      .selectFrom('tasks')
      .select('metadata')
      .where('tenant_id', '=', tenantId)
      .where('task_id', '=', task.task_id)
      .executeTakeFirst();
    const finding = existing?.metadata.finding as { fingerprint?: unknown } | undefined;
    // Only a follow-up of this very finding (restored by hand, say) may be linked; anything else is someone's task.
    if (existing?.metadata.kind !== LEAD_FOLLOW_UP_KIND || finding?.fingerprint !== fingerprint)
      return { status: 'conflict', task_id: task.task_id };
  }
  await trx
    .updateTable('lead_findings')
    .set({ linked_task_id: task.task_id, updated_at: sql<Date>`now()` })
    .where('tenant_id', '=', tenantId)
    .where('fingerprint', '=', fingerprint)
    .execute();
  await appendAudits(
    trx,
    [
      {
        tenant_id: tenantId,
        task_id: task.task_id,
        event_type: 'LEAD_FINDING_LINKED',
        level: 'info',
        decision_id: null,
        event_id: null,
        source_event_ts: null,
        payload: {
          fingerprint,
          code: row.code,
          severity: row.severity,
          title: task.title,
          priority: task.priority,
          task_status: task.status,
          window_kind: row.window_kind,
          scan_id: context.scanId,
        },
      },
    ],
    context.now,
  );
  return { status: 'created', task_id: task.task_id };
}

export type ChangeLeadFindingResult =
  | { status: 'changed'; finding: LeadFindingView }
  | { status: 'not_found' }
  | { status: 'unchanged'; finding: LeadFindingView };

/** Marks a finding resolved (audited). A resolved finding seen by a later scan reopens. */
export async function resolveLeadFinding(
  trx: QueryExecutor,
  request: { tenantId: string; fingerprint: string; by: string; note?: string; now: Date },
): Promise<ChangeLeadFindingResult> {
  return changeLeadFinding(trx, request, 'LEAD_FINDING_RESOLVED', (row) =>
    row.status === 'resolved'
      ? undefined
      : {
          status: 'resolved',
          resolved_at: request.now,
          resolved_by: request.by,
          silenced_until: null,
          silenced_by: null,
          note: request.note ?? null,
        },
  );
}

/** Silences a finding until `until` (audited): later scans count it but open nothing for it. */
export async function silenceLeadFinding(
  trx: QueryExecutor,
  request: { tenantId: string; fingerprint: string; by: string; until: Date; note?: string; now: Date },
): Promise<ChangeLeadFindingResult> {
  return changeLeadFinding(trx, request, 'LEAD_FINDING_SILENCED', () => ({
    status: 'silenced',
    silenced_until: request.until,
    silenced_by: request.by,
    resolved_at: null,
    resolved_by: null,
    note: request.note ?? null,
  }));
}

type FindingChange = Partial<
  Pick<LeadFindingRow, 'status' | 'resolved_at' | 'resolved_by' | 'silenced_until' | 'silenced_by' | 'note'>
>;

async function changeLeadFinding(
  trx: QueryExecutor,
  request: { tenantId: string; fingerprint: string; by: string; note?: string; now: Date },
  eventType: string,
  change: (row: LeadFindingRow) => FindingChange | undefined,
): Promise<ChangeLeadFindingResult> {
  await lockLeadTenant(trx, request.tenantId);
  const row = await trx
    .selectFrom('lead_findings')
    .selectAll()
    .where('tenant_id', '=', request.tenantId)
    .where('fingerprint', '=', request.fingerprint)
    .forUpdate()
    .executeTakeFirst();
  if (!row) return { status: 'not_found' };
  const update = change(row);
  if (!update) return { status: 'unchanged', finding: toLeadFindingView(row) };
  const updated = await trx
    .updateTable('lead_findings')
    .set({ ...update, updated_at: sql<Date>`now()` })
    .where('tenant_id', '=', request.tenantId)
    .where('fingerprint', '=', request.fingerprint)
    .returningAll()
    .executeTakeFirstOrThrow();
  await appendAudits(
    trx,
    [
      {
        tenant_id: request.tenantId,
        task_id: row.linked_task_id ?? leadFollowUpTaskId(row.fingerprint),
        event_type: eventType,
        level: 'info',
        decision_id: null,
        event_id: null,
        source_event_ts: null,
        payload: {
          fingerprint: row.fingerprint,
          code: row.code,
          by: request.by,
          note: request.note ?? null,
          previous_status: row.status,
          ...(update.silenced_until ? { silenced_until: update.silenced_until.toISOString() } : {}),
        },
      },
    ],
    request.now,
  );
  return { status: 'changed', finding: toLeadFindingView(updated) };
}
