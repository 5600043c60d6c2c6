/**
 * Command output is returned through `GET /v1/changesets/:id` and kept in audits, so it goes through the same
 * redaction as log lines, plus the shapes secrets take in a program's output: credentials in URLs and
 * `NAME=value` pairs whose name says secret.
 */
import { REDACTED, SECRET_KEY_PATTERN, redactKeysInText } from '@warden/observability';

const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:/@]+):([^\s/@]+)@/gi;
const SECRET_ASSIGNMENT = /\b([A-Za-z_][A-Za-z0-9_]*)\s*([=:])\s*("[^"]*"|'[^']*'|\S+)/g;

/** Output cut to its last `limitChars` characters, with every secret-shaped value masked. */
export function redactCommandOutput(output: string, limitChars: number): string {
  const tail = output.length > limitChars ? output.slice(-limitChars) : output;
  return redactKeysInText(tail)
    .replace(URL_CREDENTIALS, (_all, scheme: string, user: string) => `${scheme}${user}:${REDACTED}@`)
    .replace(SECRET_ASSIGNMENT, (all, name: string, sep: string) =>
      SECRET_KEY_PATTERN.test(name) || /^(DATABASE_URL|REDIS_URL)$/i.test(name)
        ? `${name}${sep}${REDACTED}`
        : all,
    );
}
