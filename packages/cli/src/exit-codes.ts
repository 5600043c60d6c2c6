/**
 * The CLI's exit codes, and the one for a commander outcome: apart from errors.ts (which maps Warden's
 * errors and imports their module) so that `warden --help` ends without loading any Warden package.
 */
import type { CommanderError } from 'commander';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Commander has already written its message; --help and --version come through here with exit code 0. */
export function commanderExitCode(error: CommanderError): number {
  return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
}
