/**
 * Kysely types of the lead miner's tables (migration 2026_11_22_0003); `Database` in database.ts lists them.
 */
import type { DefaultedJson, Json, NullableTimestamp, Timestamp } from '../column-types.js';
import type { ColumnType, Selectable } from 'kysely';

export interface LeadScansTable {
  scan_id: ColumnType<string, string | undefined, never>;
  tenant_id: string;
  window_kind: string;
  window_start: NullableTimestamp;
  window_end: NullableTimestamp;
  status: string;
  trigger: string;
  dry_run: ColumnType<boolean, boolean | undefined, boolean>;
  forced: ColumnType<boolean, boolean | undefined, boolean>;
  requested_by: string | null;
  rules_version: string | null;
  created_at: Timestamp;
  started_at: NullableTimestamp;
  completed_at: NullableTimestamp;
  heartbeat_at: NullableTimestamp;
  stats: DefaultedJson<Record<string, unknown>>;
  warnings: DefaultedJson<Array<{ code: string; message: string; details: Record<string, unknown> }>>;
  error: string | null;
}

export interface LeadFindingsTable {
  tenant_id: string;
  fingerprint: string;
  code: string;
  severity: string;
  title: string;
  description: string;
  window_kind: string;
  dimensions: Json<Record<string, string>>;
  first_seen_at: ColumnType<Date, Date | string, never>;
  last_seen_at: ColumnType<Date, Date | string, Date | string>;
  count: ColumnType<number, number | undefined, number>;
  evidence: Json<Record<string, unknown>>;
  linked_task_id: string | null;
  status: ColumnType<string, string | undefined, string>;
  resolved_at: NullableTimestamp;
  resolved_by: string | null;
  silenced_until: NullableTimestamp;
  silenced_by: string | null;
  note: string | null;
  last_scan_id: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export type LeadScanRow = Selectable<LeadScansTable>;
export type LeadFindingRow = Selectable<LeadFindingsTable>;
