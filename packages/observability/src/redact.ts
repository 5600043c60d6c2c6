/**
 * Keys whose values never reach a log line, at any depth: API keys, authorization headers, and payload
 * fields named like secrets. Matching is by key name, case-insensitive.
 */
export const SECRET_KEY_PATTERN =
  /(authorization|password|passwd|secret|token|api[_-]?key|private[_-]?key|credential|cookie)/i;

export const REDACTED = '[redacted]';

/** A copy of `value` with secret-named fields replaced. Leaves errors, dates and buffers alone. */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error || value instanceof Date || Buffer.isBuffer(value)) return value;
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = SECRET_KEY_PATTERN.test(key) ? REDACTED : redactSecrets(inner, depth + 1);
  }
  return out;
}

/** Masks a bearer token or API key that appears inside free text (`wdn_…`). */
export function redactKeysInText(text: string): string {
  return text.replace(/wdn_[A-Za-z0-9_-]{6,}/g, 'wdn_' + REDACTED);
}

const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:/@]+):([^\s/@]+)@/gi;
/** `NAME=value`, `NAME: value` and JSON's `"NAME": "value"`; the name decides whether the value is masked. */
const SECRET_ASSIGNMENT = /\b([A-Za-z_][A-Za-z0-9_-]*)("?)\s*([=:])\s*("[^"]*"|'[^']*'|[^\s,;&}]+)/g;

/**
 * Free text from outside (a program's output, a remote server's error body) with every secret-shaped value
 * masked: API keys, credentials in URLs, and assignments or JSON fields whose name says secret (plus
 * `DATABASE_URL`, `REDIS_URL` and `REDLOCK_URLS`, which carry passwords).
 */
export function redactSecretsInText(text: string): string {
  return redactKeysInText(text)
    .replace(URL_CREDENTIALS, (_all, scheme: string, user: string) => `${scheme}${user}:${REDACTED}@`)
    .replace(SECRET_ASSIGNMENT, (all, name: string, quote: string, sep: string, value: string) =>
      SECRET_KEY_PATTERN.test(name) || /^(DATABASE_URL|REDIS_URL|REDLOCK_URLS)$/i.test(name)
        ? `${name}${quote}${sep}${value.startsWith('"') ? `"${REDACTED}"` : REDACTED}`
        : all,
    );
}

/** The fields of a serialized error that carry free text a driver may have filled with the data it was given. */
const ERROR_TEXT_FIELDS = ['message', 'stack', 'detail', 'hint', 'where', 'internalQuery', 'query'] as const;

/**
 * A serialized error (pino's `{ type, message, stack, …own properties }`) fit for a log line: secret-named
 * properties redacted at any depth, secret-shaped text masked, and — for a database error, which quotes the
 * values it choked on (`invalid input syntax for type uuid: "…"`, `Key (token)=(…) already exists`) — every
 * quoted value and key value masked, since they are a caller's data. The SQLSTATE, table, column and
 * constraint names stay: they are what an operator needs.
 */
export function redactSerializedError(
  serialized: Record<string, unknown>,
  options: { fromDatabase?: boolean } = {},
): Record<string, unknown> {
  const out = redactSecrets(serialized) as Record<string, unknown>;
  const fromDatabase =
    options.fromDatabase === true || (typeof out.code === 'string' && typeof out.severity === 'string');
  for (const field of ERROR_TEXT_FIELDS) {
    const value = out[field];
    if (typeof value !== 'string') continue;
    let text = redactSecretsInText(value);
    if (fromDatabase)
      text = text
        .replace(/=\((?:[^()]|\([^()]*\))*\)/g, `=(${REDACTED})`)
        .replace(/"(?:[^"\\]|\\.)*"/g, `"${REDACTED}"`);
    out[field] = text;
  }
  if (fromDatabase && Array.isArray(out.parameters)) out.parameters = REDACTED;
  for (const nested of ['cause', 'errors'] as const) {
    const value = out[nested];
    if (Array.isArray(value))
      out[nested] = value.map((item) =>
        item && typeof item === 'object'
          ? redactSerializedError(item as Record<string, unknown>, options)
          : item,
      );
    else if (value && typeof value === 'object')
      out[nested] = redactSerializedError(value as Record<string, unknown>, options);
  }
  return out;
}

/**
 * Whether a database error is anywhere in an error's chain (`cause`, an AggregateError's `errors`): pino folds
 * the causes' messages into the outer message and stack, so their quoted values must be masked there too.
 */
export function involvesDatabaseError(error: unknown, depth = 0): boolean {
  if (error === null || typeof error !== 'object' || depth > 5) return false;
  const { code, severity, cause, errors } = error as {
    code?: unknown;
    severity?: unknown;
    cause?: unknown;
    errors?: unknown;
  };
  if (typeof code === 'string' && typeof severity === 'string') return true;
  if (involvesDatabaseError(cause, depth + 1)) return true;
  return Array.isArray(errors) && errors.some((inner) => involvesDatabaseError(inner, depth + 1));
}
