/**
 * Health checks after a change is applied (the `health_checking` step): a verification of the WriteGate policy
 * (run in the sandbox by the caller), or an HTTP request through an opossum
 * circuit breaker per target origin — a service that keeps failing is failed fast instead of being waited on by
 * every change set, and probed again after the reset timeout.
 */
import CircuitBreaker from 'opossum';
import type { CheckOutcome, HealthCheck } from '@warden/domain';

export interface HealthCheckerOptions {
  /** How long an open circuit waits before a trial request. */
  resetTimeoutMs: number;
  /** Upper bound on any HTTP check's own timeout. */
  maxTimeoutMs: number;
  /** Unused since command checks run in the sandbox (kept so callers need not change). @defaultValue none */
  outputLimitBytes?: number;
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
      const reason =
        (error as Error).name === 'TimeoutError'
          ? `timed out after ${timeoutMs} ms`
          : (error as Error).message;
      return { ok: false, detail: reason };
    }
  }

  private breakerFor(origin: string): CircuitBreaker<Parameters<HttpProbe>, number> {
    let breaker = this.breakers.get(origin);
    if (!breaker) {
      const probe: HttpProbe = async (url, method, timeoutMs, expected) => {
        const response = await fetch(url, {
          method,
          redirect: 'manual',
          signal: AbortSignal.timeout(timeoutMs),
        });
        await response.arrayBuffer().catch(() => undefined);
        const healthy = expected
          ? expected.includes(response.status)
          : response.status >= 200 && response.status < 300;
        if (!healthy)
          throw new UnhealthyStatusError(
            `HTTP ${response.status} (expected ${expected ? expected.join(', ') : '2xx'})`,
          );
        return response.status;
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
