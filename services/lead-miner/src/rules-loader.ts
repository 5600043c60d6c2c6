import { LeadRulesFileSchema, type LeadRulesFile } from '@warden/domain';
import { loadPolicyFile } from '@warden/runtime';

/** Reads and validates the rules file at start-up; any problem is a ConfigError naming the file and field. */
export function loadLeadRules(path: string): Promise<LeadRulesFile> {
  return loadPolicyFile(path, LeadRulesFileSchema, 'lead rules');
}
