import { WriteGatePolicySchema, writeGatePolicyHash, type WriteGatePolicy } from '@warden/domain';
import { loadPolicyFile } from '@warden/runtime';

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
