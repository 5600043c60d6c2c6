/**
 * Calls HTTP handler targets (`{ url, timeoutMs }`): a JSON POST of the handler job, through one opossum
 * breaker per URL so a failing endpoint is not hammered, with a per-call deadline so a slow one cannot hold
 * the run past `max_duration_ms`.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import CircuitBreaker from 'opossum';
import { redactSecretsInText, traceHeaders } from '@warden/observability';
import { EgressRefusedError, type EgressGuard } from '@warden/runtime';
import {
  HandlerResultSchema,
  describeIssues,
  type HandlerErrorKind,
  type HandlerJob,
  type HandlerOutcome,
  type HandlerResult,
  type HttpTarget,
} from '@warden/domain';

/**
 * A failed HTTP call inside this module: thrown so the URL's opossum breaker sees a rejected call (and,
 * through `errorFilter`, can leave 4xx answers out of its count), then caught in {@link
 * HttpHandlerClient.call} and turned into a {@link HandlerOutcome}. It is control flow, never seen outside:
 * `call` does not throw, and a failed handler call is a ledger outcome (`kind`), not a Warden error with an
 * HTTP status — so it stays a private `Error` rather than joining the WardenError hierarchy.
 */
class HandlerCallError extends Error {
  constructor(
    readonly kind: HandlerErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'HandlerCallError';
  }
}

export interface HttpHandlerClientOptions {
  /**
   * The egress policy every call obeys: the target's host must be allowed and every address it resolves to
   * is checked at connect time (a guard against triggers aimed at internal or metadata endpoints). Required.
   */
  egress: EgressGuard;
  /** How long a URL's breaker stays open before one call may try again. @defaultValue `30000` */
  breakerResetMs?: number;
  /**
   * Failure percentage (over at least `breakerVolume` calls in a minute) that opens a URL's breaker.
   * @defaultValue `50`
   */
  breakerErrorPercentage?: number;
  /** Calls in a minute a URL's breaker needs before it may open. @defaultValue `5` */
  breakerVolume?: number;
}

export class HttpHandlerClient {
  private readonly breakers = new Map<string, CircuitBreaker<Parameters<typeof postJson>, HandlerResult>>();
  /** Kept-alive connections to handler endpoints, closed by {@link shutdown}. */
  private readonly agents: Agents = {
    'http:': new HttpAgent({ keepAlive: true }),
    'https:': new HttpsAgent({ keepAlive: true }),
  };

  constructor(private readonly options: HttpHandlerClientOptions) {}

  /** Calls the handler; never throws — every failure is an outcome. */
  async call(target: HttpTarget, job: HandlerJob, deadline: Date): Promise<HandlerOutcome> {
    const url = new URL(target.url);
    try {
      this.options.egress.assertUrlAllowed(target.url);
    } catch (error) {
      return { ok: false, kind: 'validation', message: (error as Error).message };
    }
    const remaining = deadline.getTime() - Date.now();
    if (remaining <= 0)
      return { ok: false, kind: 'timeout', message: 'the deadline passed before the call could start' };
    // The deadline was set from timeoutMs when that is the tighter limit; name the limit the operator set.
    const limit =
      target.timeoutMs <= remaining + 250
        ? `the target's timeoutMs (${target.timeoutMs} ms)`
        : `max_duration_ms (${Math.round(remaining)} ms left)`;
    try {
      const result = await this.breakerFor(target.url).fire(
        this.options.egress,
        this.agents,
        target.url,
        JSON.stringify(job),
        target.headers ?? {},
        Math.min(target.timeoutMs, remaining),
        limit,
      );
      return { ok: true, result };
    } catch (error) {
      if (error instanceof HandlerCallError) return { ok: false, kind: error.kind, message: error.message };
      if ((error as { code?: string }).code === 'EOPENBREAKER') {
        return {
          ok: false,
          kind: 'transport',
          message: `the HTTP breaker for ${url.host} is open after repeated failures; not called`,
        };
      }
      return {
        ok: false,
        kind: 'transport',
        message: error instanceof Error ? error.message : String(error),
      };
    }
  }

  /** Stops every breaker's timers and closes idle connections. */
  shutdown(): void {
    for (const breaker of this.breakers.values()) breaker.shutdown();
    this.breakers.clear();
    this.agents['http:'].destroy();
    this.agents['https:'].destroy();
  }

  private breakerFor(url: string): CircuitBreaker<Parameters<typeof postJson>, HandlerResult> {
    let breaker = this.breakers.get(url);
    if (!breaker) {
      breaker = new CircuitBreaker<Parameters<typeof postJson>, HandlerResult>(postJson, {
        // Each call carries its own deadline (an AbortSignal); opossum's shared timeout would abort them all.
        timeout: false,
        resetTimeout: this.options.breakerResetMs ?? 30_000,
        errorThresholdPercentage: this.options.breakerErrorPercentage ?? 50,
        volumeThreshold: this.options.breakerVolume ?? 5,
        rollingCountTimeout: 60_000,
        // A refused request (4xx) says nothing about the endpoint's health.
        errorFilter: (error: unknown) => error instanceof HandlerCallError && error.kind === 'validation',
      });
      this.breakers.set(url, breaker);
    }
    return breaker;
  }
}

/**
 * Largest handler answer read; a bigger one is a failed call (outputs belong in storage, not in the ledger).
 */
const MAX_RESPONSE_BYTES = 1024 * 1024;

type Agents = { 'http:': HttpAgent; 'https:': HttpsAgent };

// node:http rather than fetch: in a burst of a thousand calls, fetch's web streams cost about twice the CPU.
function postJson(
  egress: EgressGuard,
  agents: Agents,
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
  limit: string,
): Promise<HandlerResult> {
  return new Promise<HandlerResult>((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    let settled = false;
    const fail = (error: HandlerCallError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(error);
    };
    const request = send(
      target,
      {
        method: 'POST',
        agent: agents[target.protocol as 'http:' | 'https:'],
        // Resolves the host and checks every address before the socket connects to it.
        lookup: egress.lookup,
        headers: {
          ...headers,
          // With tracing on, the handler can continue the fire's trace (W3C `traceparent`).
          ...traceHeaders(),
          'content-type': 'application/json',
          accept: 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            request.destroy();
            fail(new HandlerCallError('handler', `answered with more than ${MAX_RESPONSE_BYTES} bytes`));
          } else chunks.push(chunk);
        });
        response.on('error', () => fail(new HandlerCallError('transport', 'the answer was cut off')));
        response.on('end', () => {
          if (settled) return;
          try {
            const result = readAnswer(response.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'));
            settled = true;
            clearTimeout(timer);
            resolve(result);
          } catch (error) {
            fail(error as HandlerCallError);
          }
        });
      },
    );
    const timer = setTimeout(() => {
      fail(new HandlerCallError('timeout', `no answer within ${limit}`));
      request.destroy();
    }, timeoutMs);
    request.on('error', (error: NodeJS.ErrnoException) =>
      fail(
        error instanceof EgressRefusedError
          ? new HandlerCallError('validation', error.message)
          : new HandlerCallError('transport', `request failed: ${error.code ?? error.message}`),
      ),
    );
    request.end(body);
  });
}

/** How much of a failed call's answer is kept in the ledger, after redaction. */
const ERROR_BODY_CHARS = 300;

/** A remote error body as stored: redacted (it may echo the request's headers or secrets), then cut. */
function errorBody(text: string): string {
  return redactSecretsInText(text.slice(0, ERROR_BODY_CHARS * 4)).slice(0, ERROR_BODY_CHARS);
}

function readAnswer(status: number, text: string): HandlerResult {
  if (status === 408 || status === 429 || status >= 500) {
    throw new HandlerCallError(
      status === 408 ? 'timeout' : 'handler',
      `answered HTTP ${status}: ${errorBody(text)}`,
    );
  }
  if (status >= 300 && status < 400)
    throw new HandlerCallError(
      'validation',
      `answered HTTP ${status} (a redirect); redirects are not followed — point the trigger at the final URL`,
    );
  if (status >= 400) throw new HandlerCallError('validation', `answered HTTP ${status}: ${errorBody(text)}`);
  let parsed: unknown = {};
  if (text.trim() !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new HandlerCallError('validation', `answered ${status} with a body that is not JSON`);
    }
  }
  const result = HandlerResultSchema.safeParse(parsed);
  if (!result.success) {
    throw new HandlerCallError(
      'validation',
      `answered with an invalid result: ${describeIssues(result.error.issues)
        .map((d) => `${d.path}: ${d.message}`)
        .join('; ')}`,
    );
  }
  return result.data;
}
