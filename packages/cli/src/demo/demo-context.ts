/**
 * What every step of `warden demo` shares: the clients (the agent's key and a person's), the run's unique id,
 * and the step's deadline. A step reports what happens as it happens and fails with a `DemoStepFailure` that
 * says what did not happen and the first thing to check.
 */
import type { TriggersClient, WardenClient } from '@warden/client';

export interface DemoContext {
  /** Unique per run (`demo-20261204-191500-a1b2`): every task, trigger and change set of the run carries it. */
  runId: string;
  /** The API, without a trailing slash. */
  apiUrl: string;
  /** The tenant the keys belong to, for the `warden …` commands printed (they read Postgres and take `--tenant`). */
  tenant: string;
  /** Acts as the agent (events:write, tasks:read, changesets:write). */
  agent: WardenClient;
  /** Acts as a person (admin): releases, approves, registers triggers, runs lead scans. */
  admin: WardenClient;
  triggers: TriggersClient;
  /** The person's raw key, for the routes no client covers (lead scans). */
  adminKey: string;
  /** The executor workspace the change set goes to, and where it is on this machine when known. */
  workspace: { name: string; dir: string | undefined };
  /** Where to read the dev keys from, as printed in curl hints (`$(cat …)`). */
  keyHints: { agent: string; admin: string };
  /** Host the scheduler reaches this process's fallback handler on. */
  fallbackHost: string;
}

/** One step's channel back to the terminal, and its clock. */
export interface StepIo {
  /** A line about what just happened. */
  say(line: string): void;
  /** Where to look at the result (a console path, a command, a curl): printed under the step, also on failure. */
  look(line: string): void;
  /** Milliseconds left before the step times out (at least 1). */
  remainingMs(): number;
}

/** A step did not reach its result: `message` says what did not happen, `hint` the first thing to check. */
export class DemoStepFailure extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'DemoStepFailure';
  }
}

export interface DemoStep {
  title: string;
  run(ctx: DemoContext, io: StepIo): Promise<void>;
}

/**
 * Polls `probe` until it answers something other than `undefined`, or the step's time is up — then fails with
 * "`what` did not happen within N s" and `hint`. Errors from `probe` end the wait at once.
 */
export async function waitUntil<T>(
  io: StepIo,
  what: string,
  hint: string,
  probe: () => Promise<T | undefined>,
  intervalMs = 250,
): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (io.remainingMs() <= intervalMs)
      throw new DemoStepFailure(
        `${what} did not happen within ${Math.round((Date.now() - started) / 1000)} s`,
        hint,
      );
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
