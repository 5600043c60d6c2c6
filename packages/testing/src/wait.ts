export interface WaitOptions {
  /** Give up after this long. @defaultValue `15000` (generous: CI machines share their CPUs) */
  timeoutMs?: number;
  /** Pause between probes. @defaultValue `50` */
  intervalMs?: number;
}

/**
 * Polls `probe` until it returns something other than `undefined` or `false`, and returns that. A probe that
 * throws counts as "not yet" (a row not written, a server not listening). When `timeoutMs` passes first it
 * throws, naming `what` and the last value or error seen — the line a failing test needs.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: WaitOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${describe(last)})`);
    await sleep(options.intervalMs ?? 50);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function describe(value: unknown): string {
  if (value instanceof Error) return value.message;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
