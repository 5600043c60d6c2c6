/**
 * How the CLI turns any error into one line and an exit code: 0 ok, 1 failure (a server unreachable,
 * problems found), 2 bad usage or bad input. The mapping lives here and nowhere else.
 */
import { CommanderError } from 'commander';
import { ConfigError, ValidationError } from '@warden/domain';
import { commanderExitCode, EXIT_FAILURE, EXIT_USAGE } from './exit-codes.js';

export { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './exit-codes.js';

/** A command ran and failed in a way the user should read (exit 1 unless told otherwise). */
export class CommandFailedError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
    this.name = 'CommandFailedError';
  }
}

/** Bad flags or arguments caught by our own validation rather than commander's (exit 2). */
export class UsageError extends CommandFailedError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
    this.name = 'UsageError';
  }
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) return commanderExitCode(error);
  if (error instanceof CommandFailedError) return error.exitCode;
  // A flag, an environment variable or a file the user gave us does not match its schema.
  if (error instanceof ValidationError || error instanceof ConfigError) return EXIT_USAGE;
  return EXIT_FAILURE;
}

/**
 * One line describing `error`, never a stack. Node reports a refused connection to a name with several
 * addresses (`localhost` → ::1 and 127.0.0.1) as an AggregateError with an empty message, so the inner
 * errors are read too.
 */
export function describeError(error: unknown): string {
  let text: string;
  if (error instanceof AggregateError && error.message === '') {
    text = [...new Set(error.errors.map((inner) => describeError(inner)))].join('; ');
  } else if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    text = error.message !== '' ? error.message : typeof code === 'string' ? code : error.name;
  } else {
    text = String(error);
  }
  const oneLine = text.replace(/\s*\n\s*/g, '; ').trim();
  return oneLine === '' ? 'unknown error' : oneLine;
}
