import { createRequire } from 'node:module';
import { Command } from 'commander';
import { registerAuditCommand } from './commands/audit.js';
import { registerChangeSetsCommand } from './commands/changesets.js';
import { registerGatesCommand } from './commands/gates.js';
import { registerKeysCommand } from './commands/keys.js';
import { registerLeadCommand } from './commands/lead.js';
import { registerMigrateCommand } from './commands/migrate.js';
import { registerNotificationsCommand } from './commands/notifications.js';
import { registerPolicyCommand } from './commands/policy.js';
import { registerPreflightCommand } from './commands/preflight.js';
import { registerTriggersCommand } from './commands/triggers.js';
import { processEnvironment, type CliEnvironment } from './config.js';
import { processIo, type CliIo } from './output.js';

// A JSON import would print an ExperimentalWarning on Node 20 once this runs without tsx.
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

export interface CreateProgramOptions {
  /** Where the configuration is read from. @defaultValue `process.env` and `process.cwd()` */
  environment?: CliEnvironment;
  /** Where output goes. @defaultValue `process.stdout` and `process.stderr` */
  io?: CliIo;
}

/**
 * Builds the `warden` program. A new command is a file under `commands/` exporting
 * `register…Command(program, environment, io)`, added to the list below.
 *
 * Commander is told never to exit on its own (`exitOverride`): it throws a CommanderError instead, and
 * the caller turns that into exit code 2 (usage) or 0 (`--help`, `--version`).
 */
export function createProgram(options: CreateProgramOptions = {}): Command {
  const environment = options.environment ?? processEnvironment();
  const io = options.io ?? processIo;
  const program = new Command('warden')
    .description('Operate Warden, the control plane for AI agents')
    .version(version, '-V, --version', 'print the version')
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  // Commands created with `.command()` from here on copy these settings (output, exitOverride).

  registerMigrateCommand(program, environment, io);
  registerKeysCommand(program, environment, io);
  registerPreflightCommand(program, environment, io);
  registerAuditCommand(program, environment, io);
  registerLeadCommand(program, environment, io);
  registerChangeSetsCommand(program, environment, io);
  registerGatesCommand(program, environment, io);
  registerTriggersCommand(program, environment, io);
  registerPolicyCommand(program, environment, io);
  registerNotificationsCommand(program, environment, io);
  return program;
}
