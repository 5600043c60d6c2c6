/** Kysely types of the core tables: tenants, API keys, tasks and the audit chain (migrations 0001, 0002, 2026_12_01_0001). */
import type { ColumnType, Generated } from 'kysely';
import type { Json, NullableTimestamp, RequiredTimestamp, Timestamp } from '../column-types.js';
import type { SeparationOfDutiesRule } from '@warden/domain';

export interface TenantsTable {
  tenant_id: string;
  name: string;
  created_at: Timestamp;
  /** `enforced` unless a platform operator relaxed it (migration 2026_12_04_0008). */
  separation_of_duties: ColumnType<
    SeparationOfDutiesRule,
    SeparationOfDutiesRule | undefined,
    SeparationOfDutiesRule
  >;
}

export interface ApiKeysTable {
  key_id: Generated<string>;
  tenant_id: string;
  name: string;
  /** The person or system the key belongs to; recorded with every approval made with it. */
  owner: string;
  key_hash: string;
  key_prefix: string;
  scopes: ColumnType<string[], string[], string[]>;
  created_at: Timestamp;
  last_used_at: NullableTimestamp;
  revoked_at: NullableTimestamp;
}

/** What a scope rewrite took from or gave a key (migration 2026_12_03_0004); never a key or its hash. */
export interface ApiKeyScopeChangesTable {
  change_id: Generated<string>;
  key_id: string;
  tenant_id: string;
  key_prefix: string;
  owner: string;
  removed: ColumnType<string[], string[], string[]>;
  added: ColumnType<string[], string[], string[]>;
  reason: string;
  changed_at: Timestamp;
}

export interface TasksTable {
  tenant_id: string;
  task_id: string;
  status: string;
  metadata: Json<Record<string, unknown>>;
  retry_count: ColumnType<number, number | undefined, number>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface TaskAuditsTable {
  audit_id: Generated<string>;
  tenant_id: string;
  task_id: string;
  event_type: string;
  level: string;
  decision_id: string | null;
  event_id: string | null;
  source_event_ts: NullableTimestamp;
  processed_at: Timestamp;
  payload: Json<Record<string, unknown>>;
  created_at: Timestamp;
  /** Position in the tenant's hash chain (1, 2, …), unique per tenant; written only by `appendAudits`. */
  chain_seq: ColumnType<string, number | string, number | string>;
  prev_hash: string;
  row_hash: string;
  /** How `row_hash` was computed (see `AuditHashVersion` in @warden/domain): 1 before the upgrade, 2 since. */
  hash_version: number;
}

/** Signed checkpoints of the audit chains: an HMAC (key outside the database) over one row's position and hash. */
export interface AuditAnchorsTable {
  tenant_id: string;
  chain_seq: ColumnType<string, number | string, number | string>;
  row_hash: string;
  key_id: string;
  signature: string;
  anchored_at: RequiredTimestamp;
}

export interface AuditChainHeadsTable {
  tenant_id: string;
  chain_seq: ColumnType<string, number | string, number | string>;
  row_hash: string;
  updated_at: Timestamp;
}

/** A platform operator's key (migration 2026_12_04_0006): bound to no tenant, only platform scopes. */
export interface OperatorKeysTable {
  key_id: Generated<string>;
  name: string;
  owner: string;
  key_hash: string;
  key_prefix: string;
  scopes: ColumnType<string[], string[], string[]>;
  created_at: Timestamp;
  revoked_at: NullableTimestamp;
}
