import { WriteGatePolicySchema, writeGatePolicyHash, type WriteGatePolicy } from '@warden/domain';
import { loadPolicyFile } from '@warden/runtime';

export interface LoadedWriteGatePolicy {
  policy: WriteGatePolicy;
  /** SHA-256 of the parsed policy, recorded with every verdict. */
  hash: string;
  file: string;
}

/** Reads and validates the WriteGate policy at start-up; any problem is a ConfigError naming the file and field. */
export async function loadWriteGatePolicy(path: string): Promise<LoadedWriteGatePolicy> {
  const policy = await loadPolicyFile(path, WriteGatePolicySchema, 'WriteGate policy');
  return { policy, hash: writeGatePolicyHash(policy), file: path };
}
