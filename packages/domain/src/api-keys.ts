import { createHash, randomBytes } from 'node:crypto';

/**
 * API keys look like `wdn_<24 random base62-ish chars>` and are stored only as their SHA-256. A fast hash is
 * right here (unlike passwords): keys carry 144 bits of randomness, so there is nothing to brute-force.
 */
export const API_KEY_PREFIX = 'wdn_';

export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBytes(18).toString('base64url');
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The first characters shown in listings so a person can tell keys apart without seeing them. */
export function displayPrefix(key: string): string {
  return key.slice(0, API_KEY_PREFIX.length + 6);
}
