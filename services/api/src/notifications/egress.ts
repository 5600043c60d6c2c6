/**
 * The notifier's one door to the network: every outbound URL (a webhook, a Slack incoming webhook) is checked
 * against the egress policy of all of Warden's outbound calls (docs/scheduler.md, "Egress") before a request is
 * made, and the connection goes through the guard's `lookup`, so the address actually connected to is checked.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { EgressRefusedError, type EgressGuard } from '@warden/runtime';

/** An outbound call the egress policy refused; never retried (the channel's URL must change). */
export class EgressDeniedError extends Error {
  override readonly name = 'EgressDeniedError';
}

/** Throws {@link EgressDeniedError} when `url` may not be called; the message names the host, never the path. */
export function assertEgressAllowed(guard: EgressGuard, url: string): void {
  try {
    guard.assertUrlAllowed(url);
  } catch (error) {
    if (error instanceof EgressRefusedError) throw new EgressDeniedError(error.message);
    throw error;
  }
}

/** Whether an error (or its cause) is the guard refusing an address at connect time. */
export function isEgressRefusal(error: unknown, depth = 0): boolean {
  if (error === null || typeof error !== 'object' || depth > 4) return false;
  if (error instanceof EgressRefusedError || (error as { code?: unknown }).code === 'EGRESS_REFUSED')
    return true;
  return isEgressRefusal((error as { cause?: unknown }).cause, depth + 1);
}

/** What `@slack/webhook` asks of a fetch function (its `FetchFunction`), answered from node:http. */
interface MinimalFetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | FormData;
  signal?: AbortSignal;
}

/**
 * A `fetch` for `@slack/webhook` whose sockets resolve through the guard and which never follows a redirect (a
 * 3xx comes back as the answer). Bodies are read whole; Slack's answers are a few bytes.
 */
export function guardedFetch(guard: EgressGuard) {
  return (url: string | URL, init: MinimalFetchInit = {}) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    if (init.body !== undefined && typeof init.body !== 'string')
      return Promise.reject(new Error('only string bodies are sent'));
    const body = init.body;
    return new Promise<{
      ok: boolean;
      status: number;
      statusText: string;
      url: string;
      headers: { get(name: string): string | null; entries(): Iterable<[string, string]> };
      arrayBuffer(): Promise<ArrayBuffer>;
      json(): Promise<unknown>;
      text(): Promise<string>;
    }>((resolve, reject) => {
      const request = send(
        target,
        {
          method: init.method ?? 'GET',
          lookup: guard.lookup,
          headers: {
            ...init.headers,
            ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }),
          },
          ...(init.signal ? { signal: init.signal } : {}),
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const buffer = Buffer.concat(chunks);
            const status = response.statusCode ?? 0;
            const headerPairs = Object.entries(response.headers).map(
              ([name, value]) =>
                [name, Array.isArray(value) ? value.join(', ') : String(value ?? '')] as [string, string],
            );
            resolve({
              ok: status >= 200 && status < 300,
              status,
              statusText: response.statusMessage ?? '',
              url: target.toString(),
              headers: {
                get: (name) => headerPairs.find(([n]) => n === name.toLowerCase())?.[1] ?? null,
                entries: () => headerPairs,
              },
              arrayBuffer: async () =>
                buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) as ArrayBuffer,
              json: async () => JSON.parse(buffer.toString('utf8')) as unknown,
              text: async () => buffer.toString('utf8'),
            });
          });
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  };
}
