/** The `warden` entry point: runs the program and turns its outcome into one line and an exit code. */
import { CommanderError } from 'commander';
import { describeError, exitCodeFor } from './errors.js';
import { createProgram } from './program.js';

async function main(argv: readonly string[]): Promise<number> {
  try {
    await createProgram().parseAsync(argv);
    return 0;
  } catch (error) {
    // Commander prints its own usage errors; everything else is ours to print, as one line and no stack.
    if (!(error instanceof CommanderError)) process.stderr.write(`error: ${describeError(error)}\n`);
    return exitCodeFor(error);
  }
}

process.exitCode = await main(process.argv);
// Commands close every client they open, so the process ends by itself. Should a stuck socket keep it
// alive anyway, leave shortly after rather than hang a script or a Kubernetes Job forever.
setTimeout(() => process.exit(), 2000).unref();
