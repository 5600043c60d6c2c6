import { createRequire } from 'node:module';
import { Command } from 'commander';
import type { CliIo } from './output.js';

// A JSON import would print an ExperimentalWarning on Node 20 once this runs without tsx.
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/**
 * The `warden` program with no command yet: name, version, where output goes. Commander is told never to
 * exit on its own (`exitOverride`): it throws a CommanderError instead, and the caller turns that into exit
 * code 2 (usage) or 0 (`--help`, `--version`). Commands created with `.command()` copy these settings.
 */
export function createBaseProgram(io: CliIo): Command {
  return new Command('warden')
    .description('Operate Warden, the control plane for AI agents')
    .version(version, '-V, --version', 'print the version')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
}
