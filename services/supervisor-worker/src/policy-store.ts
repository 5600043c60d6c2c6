/**
 * Which supervisor policy each tenant's events are decided under: the tenant's active stored version
 * (`policy_versions`, kind `supervisor`), or the bootstrap file for a tenant that has none — the
 * `ActivePolicyStore` of @warden/runtime, which the WriteGate and the lead miner use for their kinds too.
 *
 * A group of events takes a snapshot of its tenants' policies before deciding, so no event is ever decided by a
 * half-loaded policy, and each decision records the version it ran under (`1@v2`).
 */
import type { Db } from '@warden/db';
import type { SupervisorPolicyFile } from '@warden/domain';
import type { Logger } from '@warden/observability';
import { ActivePolicyStore, type PolicyAnnouncementSubscriber } from '@warden/runtime';

export interface SupervisorPolicyStoreOptions {
  db: Db;
  /** The policy of tenants without a stored version (SUPERVISOR_POLICY_FILE); the decision processor applies it. */
  bootstrap: SupervisorPolicyFile;
  logger: Logger;
  /** A Redis connection this store may put into subscriber mode (it is closed with the store). @defaultValue none (polling only) */
  subscriber?: PolicyAnnouncementSubscriber;
  /** Key prefix of the announcement channel. @defaultValue `warden` */
  prefix?: string;
  /** Poll of Postgres for versions activated while an announcement was lost. @defaultValue `2000` */
  pollIntervalMs?: number;
}

export class SupervisorPolicyStore extends ActivePolicyStore<'supervisor'> {
  constructor({ bootstrap: _bootstrap, ...options }: SupervisorPolicyStoreOptions) {
    super({ ...options, kind: 'supervisor' });
  }
}
