/** A named dependency check: resolves when healthy, throws (or times out) when not. */
export type ReadinessCheck = () => Promise<void>;

export interface CheckResult {
  name: string;
  ok: boolean;
  latency_ms: number;
  error?: string;
}

export interface ReadinessReport {
  ready: boolean;
  checks: CheckResult[];
}

/** Runs every check in parallel, each bounded by `timeoutMs` (default 2000). Never throws. */
export async function runReadinessChecks(
  checks: Record<string, ReadinessCheck>,
  timeoutMs = 2000,
): Promise<ReadinessReport> {
  const results = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<CheckResult> => {
      const started = performance.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          check(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        return { name, ok: true, latency_ms: Math.round(performance.now() - started) };
      } catch (error) {
        return {
          name,
          ok: false,
          latency_ms: Math.round(performance.now() - started),
          error: error instanceof Error ? error.message : String(error),
        };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return { ready: results.every((r) => r.ok), checks: results };
}
