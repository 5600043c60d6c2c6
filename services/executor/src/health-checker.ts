/**
 * Health checks after a change is applied (the `health_checking` step): a verification of the WriteGate policy
 * (run in the sandbox by the caller), or an HTTP request through an opossum
 * circuit breaker per target origin — a service that keeps failing is failed fast instead of being waited on by
 * every change set, and probed again after the reset timeout.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import CircuitBreaker from 'opossum';
import type { CheckOutcome, HealthCheck } from '@warden/domain';
import type { EgressGuard } from '@warden/runtime';

export interface HealthCheckerOptions {
  /** How long an open circuit waits before a trial request. */
  resetTimeoutMs: number;
  /** Upper bound on any HTTP check's own timeout. */
  maxTimeoutMs: number;
  /** Unused since command checks run in the sandbox (kept so callers need not change). @defaultValue none */
  outputLimitBytes?: number;
  /** The egress policy HTTP checks obey (an agent writes their URLs). Required. */
  egress: EgressGuard;
}

export interface CheckContext {
  /** Runs the policy's verification of that name in the sandbox (a health check of type `verification`). */
  runVerification(name: string): Promise<{ ok: boolean; detail: string; output?: string }>;
}

/**
 * Internal control flow, not a WardenError: the HTTP probe throws it so the circuit breaker counts an unhealthy
 * status as a failure; `http()` turns it into a failed check outcome, so it never leaves this file.
 */
class UnhealthyStatusError extends Error {}

type HttpProbe = (
  url: string,
  method: string,
  timeoutMs: number,
  expected: readonly number[] | undefined,
) => Promise<number>;

export class HealthChecker {
  private readonly breakers = new Map<string, CircuitBreaker<Parameters<HttpProbe>, number>>();

  constructor(private readonly options: HealthCheckerOptions) {}

  /** Runs one check with its attempts; never throws. */
  async run(check: HealthCheck, context: CheckContext): Promise<CheckOutcome> {
    const started = performance.now();
    let last: { ok: boolean; detail: string; output?: string } = { ok: false, detail: 'not run' };
    for (let attempt = 1; attempt <= check.attempts; attempt++) {
      last =
        check.type === 'http' ? await this.http(check) : await context.runVerification(check.verification);
      if (last.ok) break;
      if (attempt < check.attempts) await new Promise((resolve) => setTimeout(resolve, check.interval_ms));
    }
    const attempts = check.attempts > 1 ? ` (${check.attempts} attempt(s))` : '';
    return {
      name: check.name,
      kind: 'health_check',
      ok: last.ok,
      duration_ms: Math.round(performance.now() - started),
      detail: last.ok ? last.detail : `${last.detail}${attempts}`,
      ...(last.output === undefined ? {} : { output: last.output }),
    };
  }

  shutdown(): void {
    for (const breaker of this.breakers.values()) breaker.shutdown();
    this.breakers.clear();
  }

  private async http(check: Extract<HealthCheck, { type: 'http' }>) {
    const timeoutMs = Math.min(check.timeout_ms, this.options.maxTimeoutMs);
    try {
      this.options.egress.assertUrlAllowed(check.url);
    } catch (error) {
      return { ok: false, detail: (error as Error).message };
    }
    const breaker = this.breakerFor(new URL(check.url).origin);
    try {
      const status = await breaker.fire(check.url, check.method, timeoutMs, check.expected_status);
      return { ok: true, detail: `HTTP ${status}` };
    } catch (error) {
      if (breaker.opened && (error as { code?: string }).code === 'EOPENBREAKER') {
        return {
          ok: false,
          detail: `circuit open for ${new URL(check.url).origin} after repeated failures; not called`,
        };
      }
      const reason = ['TimeoutError', 'AbortError'].includes((error as Error).name)
        ? `timed out after ${timeoutMs} ms`
        : (error as Error).message;
      return { ok: false, detail: reason };
    }
  }

  private breakerFor(origin: string): CircuitBreaker<Parameters<HttpProbe>, number> {
    let breaker = this.breakers.get(origin);
    if (!breaker) {
      const egress = this.options.egress;
      const probe: HttpProbe = async (url, method, timeoutMs, expected) => {
        const status = await requestStatus(url, method, timeoutMs, egress);
        const healthy = expected ? expected.includes(status) : status >= 200 && status < 300;
        if (!healthy)
          throw new UnhealthyStatusError(
            `HTTP ${status} (expected ${expected ? expected.join(', ') : '2xx'})` +
              (status >= 300 && status < 400 ? '; redirects are not followed' : ''),
          );
        return status;
      };
      // The request's own AbortSignal bounds each call; the breaker only counts outcomes.
      breaker = new CircuitBreaker(probe, {
        name: `health:${origin}`,
        timeout: false,
        resetTimeout: this.options.resetTimeoutMs,
        errorThresholdPercentage: 50,
        volumeThreshold: 3,
        rollingCountTimeout: 60_000,
      });
      this.breakers.set(origin, breaker);
    }
    return breaker;
  }
}

/**
 * One request whose answer is only its status: the host is resolved through the egress guard, so the socket
 * connects to a checked address; redirects are not followed; the body is drained and dropped.
 */
function requestStatus(url: string, method: string, timeoutMs: number, egress: EgressGuard): Promise<number> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<number>((resolve, reject) => {
    const request = send(
      target,
      { method, lookup: egress.lookup, signal: AbortSignal.timeout(timeoutMs) },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end();
  });
}
