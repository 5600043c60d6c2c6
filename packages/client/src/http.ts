/**
 * The one HTTP call both clients make: JSON in and out, the API key, a timeout per attempt and retries with
 * backoff for what may succeed later (a lost connection, 429, 5xx), honouring `Retry-After`.
 */
import type { ErrorDetail } from '@warden/domain';
import { WardenApiError, WardenConnectionError } from './errors.js';
import { isRetryableStatus, parseRetryAfter, retryDelayMs, sleep } from './retry.js';

export interface HttpSettings {
  baseUrl: string;
  /** The `authorization` header value (`Bearer wdn_…`). */
  authorization: string;
  /** Per attempt. */
  timeoutMs: number;
  /** Retries after the first attempt. */
  retries: number;
  /** First backoff; doubles per retry. */
  retryDelayMs: number;
  /** Longest backoff, also the cap on `Retry-After`. */
  maxRetryDelayMs: number;
  fetch: typeof globalThis.fetch;
}

/**
 * Sends one request, retrying what may succeed later; resolves with the parsed JSON body of a 2xx (undefined
 * for an empty one). A body is serialised once, so every attempt sends byte-identical content.
 * Throws `WardenConnectionError` when no answer came, `WardenApiError` for an error answer or a 2xx body that
 * is not JSON. `extra` adds request headers (e.g. `Prefer`) and replaces the per-attempt timeout.
 */
export async function requestJson(
  http: HttpSettings,
  method: string,
  path: string,
  body?: unknown,
  extra: { headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<unknown> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = {
    ...extra.headers,
    authorization: http.authorization,
    accept: 'application/json',
  };
  const timeoutMs = extra.timeoutMs ?? http.timeoutMs;
  if (payload !== undefined) headers['content-type'] = 'application/json';

  for (let attempt = 1; ; attempt++) {
    const retriesLeft = attempt <= http.retries;
    let response: Response;
    let text: string;
    try {
      response = await http.fetch(http.baseUrl + path, {
        method,
        headers,
        body: payload,
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      if (retriesLeft) {
        await sleep(retryDelayMs(attempt, http.retryDelayMs, http.maxRetryDelayMs));
        continue;
      }
      const timedOut = error instanceof Error && error.name === 'TimeoutError';
      const reason = timedOut
        ? `timed out after ${timeoutMs} ms`
        : `failed: ${error instanceof Error ? error.message : String(error)}`;
      throw new WardenConnectionError(
        `${method} ${path} ${reason} (${attempt} attempt${attempt === 1 ? '' : 's'})`,
        { cause: error, timedOut, attempts: attempt },
      );
    }

    if (response.ok) {
      if (text === '') return undefined;
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new WardenApiError(
          response.status,
          'invalid_response',
          `${method} ${path} answered ${response.status} with a body that is not JSON`,
        );
      }
    }
    const error = toApiError(response.status, response.statusText, text);
    if (!isRetryableStatus(response.status) || !retriesLeft) throw error;
    await sleep(
      retryDelayMs(
        attempt,
        http.retryDelayMs,
        http.maxRetryDelayMs,
        parseRetryAfter(response.headers.get('retry-after')),
      ),
    );
  }
}

/** The API's error shape as a `WardenApiError`; anything else as `http_<status>`. */
function toApiError(status: number, statusText: string, text: string): WardenApiError {
  try {
    const { error } = JSON.parse(text) as {
      error?: { code?: unknown; message?: unknown; details?: unknown };
    };
    if (error && typeof error.code === 'string' && typeof error.message === 'string') {
      const details = Array.isArray(error.details) ? (error.details as ErrorDetail[]) : [];
      return new WardenApiError(status, error.code, error.message, details);
    }
  } catch {
    // Not JSON: fall through to the generic error.
  }
  return new WardenApiError(status, `http_${status}`, `HTTP ${status}${statusText ? ` ${statusText}` : ''}`);
}
