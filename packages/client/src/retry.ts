/** 429 and 5xx may succeed later; any other 4xx describes a request that will fail the same way again. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/**
 * How long to wait before retry number `retry` (1-based): exponential from `baseMs`, capped at `maxMs`, with
 * "equal jitter" — half the delay fixed, half random — so many clients failing together do not retry in
 * lockstep, yet none retries almost at once. A `Retry-After` from the server is honoured when it asks for
 * more, still within `maxMs`.
 */
export function retryDelayMs(retry: number, baseMs: number, maxMs: number, retryAfterMs?: number): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** (retry - 1));
  const jittered = exponential / 2 + Math.random() * (exponential / 2);
  return Math.min(maxMs, Math.max(jittered, retryAfterMs ?? 0));
}

/** `Retry-After` as milliseconds: either delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
