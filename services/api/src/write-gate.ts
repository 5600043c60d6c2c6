import type { Db } from '@warden/db';
import { WriteGatePolicySchema, writeGatePolicyHash, type WriteGatePolicy } from '@warden/domain';
import type { Logger } from '@warden/observability';
import { ActivePolicyStore, loadPolicyFile, type PolicyAnnouncementSubscriber } from '@warden/runtime';

/** The WriteGate policy the API gates change-set submissions with, and its hash (stored with every verdict). */
export interface ApiWriteGatePolicy {
  policy: WriteGatePolicy;
  hash: string;
}

/** Reads and validates the WriteGate policy at start-up; any problem is a ConfigError naming the file and field. */
export async function loadWriteGatePolicyFile(path: string): Promise<ApiWriteGatePolicy> {
  const policy = await loadPolicyFile(path, WriteGatePolicySchema, 'WriteGate policy');
  return { policy, hash: writeGatePolicyHash(policy) };
}

/**
 * Each tenant's active stored WriteGate version (`warden policy push --kind writegate`), hot-reloaded; a tenant
 * without one is gated with the file. Its verdicts record the stored version as `policy_version` (`1@v3`).
 */
export function createWriteGatePolicyStore(options: {
  db: Db;
  logger: Logger;
  subscriber: PolicyAnnouncementSubscriber;
  prefix: string;
  pollIntervalMs: number;
}): ActivePolicyStore<'writegate', ApiWriteGatePolicy> {
  return new ActivePolicyStore({
    ...options,
    kind: 'writegate',
    prepare: (policy) => ({ policy, hash: writeGatePolicyHash(policy) }),
  });
}
