/**
 * Command output is returned through `GET /v1/changesets/:id` and kept in audits, so it goes through the same
 * redaction as every text Warden takes from outside (see `redactSecretsInText`).
 */
import { redactSecretsInText } from '@warden/observability';

/** Output cut to its last `limitChars` characters, with every secret-shaped value masked. */
export function redactCommandOutput(output: string, limitChars: number): string {
  return redactSecretsInText(output.length > limitChars ? output.slice(-limitChars) : output);
}
