/**
 * The program the `warden` process runs: only the command named on the command line is loaded (see
 * command-catalog.ts). Without a command (`warden --help`, `--version`) the commands are listed from the
 * catalog, so the help is the same as the whole program's without loading any of them.
 */
import { Help, type Command } from 'commander';
import { COMMANDS } from './command-catalog.js';
import type { CliEnvironment } from './config.js';
import type { CliIo } from './output.js';
import { createBaseProgram } from './program-base.js';

/** The program for `argv` (`[node, script, ...args]`), with as little loaded as will run it. */
export async function createProgramFor(
  argv: readonly string[],
  environment: CliEnvironment,
  io: CliIo,
): Promise<Command> {
  const first = argv[2];
  if (first === undefined || first.startsWith('-')) {
    // No command, or top-level options first (`--help`, `--version`, or a mistake commander reports).
    if (argv.slice(2).some((arg) => !arg.startsWith('-'))) return wholeProgram(environment, io);
    return catalogProgram(io);
  }
  const entry = COMMANDS.find((command) => command.name === first);
  if (entry === undefined) return wholeProgram(environment, io);
  const program = createBaseProgram(io);
  (await entry.load())(program, environment, io);
  return program;
}

/** Every command, as program.ts registers them (a name the catalog does not know, `help`, a mistake). */
async function wholeProgram(environment: CliEnvironment, io: CliIo): Promise<Command> {
  const { createProgram } = await import('./program.js');
  return createProgram({ environment, io });
}

/** The commands listed (for the help) but not loaded: none of them runs here. */
export function catalogProgram(io: CliIo): Command {
  const program = createBaseProgram(io);
  for (const entry of COMMANDS) program.command(entry.name).description(entry.description);
  const terms = new Map(COMMANDS.map((entry) => [entry.name, entry.term]));
  program.configureHelp({
    subcommandTerm(command) {
      return terms.get(command.name()) ?? Help.prototype.subcommandTerm.call(this, command);
    },
  });
  return program;
}
