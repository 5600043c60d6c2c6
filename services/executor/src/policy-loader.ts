import { readFile } from 'node:fs/promises';
import {
  ConfigError,
  ValidationError,
  WriteGatePolicySchema,
  parsePolicyYaml,
  writeGatePolicyHash,
  type WriteGatePolicy,
} from '@warden/domain';

export interface LoadedWriteGatePolicy {
  policy: WriteGatePolicy;
  /** SHA-256 of the parsed policy, recorded with every verdict. */
  hash: string;
  file: string;
}

/** Reads and validates the WriteGate policy at start-up; any problem is a ConfigError naming the file and field. */
export async function loadWriteGatePolicy(path: string): Promise<LoadedWriteGatePolicy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the WriteGate policy file ${path}: ${(error as Error).message}`);
  }
  try {
    const policy = parsePolicyYaml(text, WriteGatePolicySchema, path);
    return { policy, hash: writeGatePolicyHash(policy), file: path };
  } catch (error) {
    if (error instanceof ValidationError)
      throw new ConfigError(`invalid WriteGate policy: ${error.message}`, error.details);
    throw error;
  }
}
