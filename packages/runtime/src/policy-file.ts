import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { ConfigError, ValidationError, parsePolicyYaml } from '@warden/domain';

/**
 * Reads and validates a YAML policy or rules file at start-up. Any problem — a missing file, a YAML syntax
 * error (with its line), a field that breaks the schema (with its path) — is a ConfigError naming the file,
 * so the service stops with one readable line instead of running on a policy it misread.
 *
 * @param what - how the file is named in messages, e.g. `supervisor policy`.
 */
export async function loadPolicyFile<S extends z.ZodType>(
  path: string,
  schema: S,
  what: string,
): Promise<z.output<S>> {
  return (await loadPolicyFileWithSource(path, schema, what)).document;
}

/**
 * {@link loadPolicyFile}, also giving the file's text: the bootstrap version of a stored policy is stored as
 * it was written, comments included.
 */
export async function loadPolicyFileWithSource<S extends z.ZodType>(
  path: string,
  schema: S,
  what: string,
): Promise<{ source: string; document: z.output<S> }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the ${what} file ${path}: ${(error as Error).message}`);
  }
  try {
    return { source: text, document: parsePolicyYaml(text, schema, path) };
  } catch (error) {
    if (error instanceof ValidationError)
      throw new ConfigError(`invalid ${what}: ${error.message}`, error.details);
    throw error;
  }
}
