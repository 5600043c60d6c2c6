/**
 * The console's session: a signed cookie (HMAC-SHA256) naming the API key a person signed in with, its tenant
 * and an expiry; and the CSRF tokens bound to it. The cookie never holds the key itself, and the key is looked
 * up again on every request, so revoking it ends its sessions at once.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';

export const SESSION_COOKIE = 'warden_console';
/** Holds a random value before sign-in, so the sign-in form carries a CSRF token too (double submit). */
export const PRE_SESSION_COOKIE = 'warden_console_pre';
export const CONSOLE_PATH = '/console';

export interface SessionClaims {
  /** The API key's id (never the key). */
  keyId: string;
  tenantId: string;
  /** Expiry, epoch milliseconds. */
  expiresAt: number;
  /** Random per session: the CSRF token is derived from it. */
  nonce: string;
}

export interface SessionCodecOptions {
  /** The HMAC key; at least 32 bytes. Replicas of the API must share it for sessions to move between them. */
  secret: string;
  /** How long a session lasts from sign-in. @defaultValue 8 hours */
  ttlMs?: number;
  /** Mark cookies `Secure` (HTTPS only). @defaultValue `false` (the API serves plain HTTP; put TLS in front) */
  secureCookies?: boolean;
}

const b64 = (value: Buffer | string) => Buffer.from(value).toString('base64url');

function equalSecrets(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Reads one cookie from the header without a parser dependency; undefined when absent or malformed. */
export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== 'string' || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export class SessionCodec {
  readonly ttlMs: number;
  private readonly secret: Buffer;
  private readonly secure: boolean;

  constructor(options: SessionCodecOptions) {
    if (Buffer.byteLength(options.secret) < 32)
      throw new Error('the console session secret must be ≥ 32 bytes');
    this.secret = Buffer.from(options.secret);
    this.ttlMs = options.ttlMs ?? 8 * 3600_000;
    this.secure = options.secureCookies ?? false;
  }

  private sign(purpose: string, value: string): string {
    return createHmac('sha256', this.secret).update(`${purpose}\n${value}`).digest('base64url');
  }

  issue(keyId: string, tenantId: string, now = Date.now()): { cookie: string; claims: SessionClaims } {
    const claims: SessionClaims = {
      keyId,
      tenantId,
      expiresAt: now + this.ttlMs,
      nonce: randomBytes(16).toString('base64url'),
    };
    const payload = b64(JSON.stringify(claims));
    return { cookie: `${payload}.${this.sign('session', payload)}`, claims };
  }

  /** The claims of a genuine, unexpired cookie; undefined for anything else (forged, altered, expired, garbage). */
  verify(cookie: string | undefined, now = Date.now()): SessionClaims | undefined {
    if (!cookie || cookie.length > 2048) return undefined;
    const dot = cookie.indexOf('.');
    if (dot <= 0) return undefined;
    const payload = cookie.slice(0, dot);
    if (!equalSecrets(cookie.slice(dot + 1), this.sign('session', payload))) return undefined;
    let claims: Partial<SessionClaims>;
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Partial<SessionClaims>;
    } catch {
      return undefined;
    }
    if (
      typeof claims.keyId !== 'string' ||
      typeof claims.tenantId !== 'string' ||
      typeof claims.nonce !== 'string' ||
      typeof claims.expiresAt !== 'number' ||
      claims.expiresAt <= now
    )
      return undefined;
    return claims as SessionClaims;
  }

  /** The CSRF token of a session: every state-changing form and fetch must send it back. */
  csrfToken(claims: SessionClaims): string {
    return this.sign('csrf', claims.nonce);
  }

  checkCsrf(claims: SessionClaims, token: unknown): boolean {
    return typeof token === 'string' && equalSecrets(token, this.csrfToken(claims));
  }

  /** The sign-in form's token, bound to the pre-session cookie's random value. */
  preSessionToken(value: string): string {
    return this.sign('pre-session', value);
  }

  checkPreSession(value: string | undefined, token: unknown): boolean {
    return (
      typeof value === 'string' &&
      value.length > 0 &&
      typeof token === 'string' &&
      equalSecrets(token, this.preSessionToken(value))
    );
  }

  setCookie(res: Response, name: string, value: string, maxAgeMs: number): void {
    res.cookie(name, value, {
      httpOnly: true,
      sameSite: 'strict',
      secure: this.secure,
      path: CONSOLE_PATH,
      maxAge: maxAgeMs,
    });
  }

  clearCookie(res: Response, name: string): void {
    res.clearCookie(name, { httpOnly: true, sameSite: 'strict', secure: this.secure, path: CONSOLE_PATH });
  }
}
