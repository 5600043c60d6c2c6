import { SupervisorPolicyFileSchema, type SupervisorPolicyFile } from '@warden/domain';
import { loadPolicyFile } from '@warden/runtime';

/** Reads and validates the policy file at start-up; any problem is a ConfigError naming the file and field. */
export function loadSupervisorPolicy(path: string): Promise<SupervisorPolicyFile> {
  return loadPolicyFile(path, SupervisorPolicyFileSchema, 'supervisor policy');
}
