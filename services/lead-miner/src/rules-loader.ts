import { readFile } from 'node:fs/promises';
import {
  ConfigError,
  LeadRulesFileSchema,
  ValidationError,
  parsePolicyYaml,
  type LeadRulesFile,
} from '@warden/domain';

/** Reads and validates the rules file at start-up; any problem is a ConfigError naming the file and field. */
export async function loadLeadRules(path: string): Promise<LeadRulesFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the lead rules file ${path}: ${(error as Error).message}`);
  }
  try {
    return parsePolicyYaml(text, LeadRulesFileSchema, path);
  } catch (error) {
    if (error instanceof ValidationError)
      throw new ConfigError(`invalid lead rules: ${error.message}`, error.details);
    throw error;
  }
}
