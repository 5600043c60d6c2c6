import type { Db } from '@warden/db';
import { WriteGatePolicySchema, writeGatePolicyHash, type WriteGatePolicy } from '@warden/domain';
import type { Logger } from '@warden/observability';
import { ActivePolicyStore, loadPolicyFile, type PolicyAnnouncementSubscriber } from '@warden/runtime';

export interface LoadedWriteGatePolicy {
  policy: WriteGatePolicy;
  /** SHA-256 of the parsed policy, recorded with every verdict. */
  hash: string;
  /** Where it came from: the policy file's path, or `stored writegate policy v3`. */
  file: string;
}

/** Reads and validates the WriteGate policy at start-up; any problem is a ConfigError naming the file and field. */
export async function loadWriteGatePolicy(path: string): Promise<LoadedWriteGatePolicy> {
  const policy = await loadPolicyFile(path, WriteGatePolicySchema, 'WriteGate policy');
  return { policy, hash: writeGatePolicyHash(policy), file: path };
}

/**
 * Each tenant's active stored WriteGate version (`warden policy push --kind writegate`), hot-reloaded: the
 * executor re-checks, verifies and sizes a tenant's change sets with it; a tenant without one gets the file.
 */
export function createWriteGatePolicyStore(options: {
  db: Db;
  logger: Logger;
  subscriber: PolicyAnnouncementSubscriber;
  prefix: string;
  pollIntervalMs: number;
}): ActivePolicyStore<'writegate', LoadedWriteGatePolicy> {
  return new ActivePolicyStore({
    ...options,
    kind: 'writegate',
    prepare: (policy, version) => ({
      policy,
      hash: writeGatePolicyHash(policy),
      file: `stored writegate policy v${version}`,
    }),
  });
}
