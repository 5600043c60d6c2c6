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
