import { readFile } from 'node:fs/promises';
import { ConfigError, SupervisorPolicyFileSchema, ValidationError, parsePolicyYaml, type SupervisorPolicyFile } from '@warden/domain';

/** Reads and validates the policy file at start-up; any problem is a ConfigError naming the file and field. */
export async function loadSupervisorPolicy(path: string): Promise<SupervisorPolicyFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the supervisor policy file ${path}: ${(error as Error).message}`);
  }
  try {
    return parsePolicyYaml(text, SupervisorPolicyFileSchema, path);
  } catch (error) {
    if (error instanceof ValidationError) throw new ConfigError(`invalid supervisor policy: ${error.message}`, error.details);
    throw error;
  }
}
