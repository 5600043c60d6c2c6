/** Kysely types of the stored policy versions (migration 2026_12_04_0002). */
import type { PolicyKind, PolicyVersionStatus } from '@warden/domain';
import type { NullableTimestamp, Timestamp } from '../column-types.js';

export interface PolicyVersionsTable {
  tenant_id: string;
  kind: PolicyKind;
  version: number;
  status: PolicyVersionStatus;
  /** The `version` field of the file itself. */
  file_version: string;
  /** The YAML as pushed: what is parsed when the version is loaded. */
  source: string;
  sha256: string;
  note: string | null;
  /** The version active when this one was pushed; `diff` is against it. */
  base_version: number | null;
  diff: string;
  pushed_by: string;
  pushed_by_owner: string;
  pushed_at: Timestamp;
  activated_by: string | null;
  activated_by_owner: string | null;
  activated_at: NullableTimestamp;
}
