/**
 * The `lead_scans` repository: one row per scan (queued, running, completed, failed, skipped), its heartbeat
 * while it runs, and the views the API lists. SQL and row mapping only; the scan workflow that drives these
 * rows lives in @warden/lead-engine.
 */
import { sql } from 'kysely';
import type { LeadScanStatus, LeadScanTrigger, LeadScanView, LeadScanWarning, Page } from '@warden/domain';
import type { QueryExecutor } from '../database.js';
import { keysetPage } from './keyset-page.js';
import type { LeadScanRow } from './tables.js';

/** The database's `now()` less `ms` milliseconds: heartbeats and queue times are compared on its clock. */
function millisecondsAgo(ms: number) {
  return sql<Date>`now() - ${ms}::double precision * interval '1 millisecond'`;
}

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
        eb.and([eb('status', '=', 'running'), eb('heartbeat_at', '<', millisecondsAgo(scan.staleAfterMs))]),
      ]),
    )
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Shows the scan is alive (its heartbeat). */
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
        eb.and([eb('status', '=', 'running'), eb('heartbeat_at', '<', millisecondsAgo(staleAfterMs))]),
        eb.and([eb('status', '=', 'queued'), eb('created_at', '<', millisecondsAgo(queuedTooLongMs))]),
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
  return keysetPage(await query.execute(), options.limit, toLeadScanView, (last) => ({
    created_at: last.created_at.toISOString(),
    scan_id: last.scan_id,
  }));
}

/** Tenants a scan of "every tenant" covers: those with API keys and those with an audit trail. */
export async function listLeadScanTenants(db: QueryExecutor): Promise<string[]> {
  const rows = await sql<{ tenant_id: string }>`
    select tenant_id from tenants union select tenant_id from audit_chain_heads order by tenant_id`.execute(
    db,
  );
  return rows.rows.map((r) => r.tenant_id);
}
