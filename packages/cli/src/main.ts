/** The `warden` entry point: runs the program and turns its outcome into one line and an exit code. */
import { CommanderError } from 'commander';
import { commanderExitCode } from './exit-codes.js';
import { createProgramFor } from './lazy-program.js';
import { processIo } from './output.js';

async function main(argv: readonly string[]): Promise<number> {
  try {
    const program = await createProgramFor(argv, { env: process.env, cwd: process.cwd() }, processIo);
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    // Commander prints its own usage errors (and ends --help and --version this way).
    if (error instanceof CommanderError) return commanderExitCode(error);
    // Loaded only now: it knows Warden's error classes, whose module `--help` need not load.
    const { describeError, exitCodeFor } = await import('./errors.js');
    // Everything else is ours to print, as one line and no stack.
    process.stderr.write(`error: ${describeError(error)}\n`);
    return exitCodeFor(error);
  }
}

process.exitCode = await main(process.argv);
// Commands close every client they open, so the process ends by itself. Should a stuck socket keep it
// alive anyway, leave shortly after rather than hang a script or a Kubernetes Job forever.
setTimeout(() => process.exit(), 2000).unref();
