import type { Command } from 'commander';
import { registerAuditCommand } from './commands/audit.js';
import { registerChangeSetsCommand } from './commands/changesets.js';
import { registerDemoCommand } from './commands/demo.js';
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
import { createBaseProgram } from './program-base.js';

export interface CreateProgramOptions {
  /** Where the configuration is read from. @defaultValue `process.env` and `process.cwd()` */
  environment?: CliEnvironment;
  /** Where output goes. @defaultValue `process.stdout` and `process.stderr` */
  io?: CliIo;
}

/**
 * Builds the `warden` program with every command. A new command is a file under `commands/` exporting
 * `register…Command(program, environment, io)`, added to the list below and to command-catalog.ts (which the
 * `warden` process loads commands from, one at a time).
 *
 * Commander is told never to exit on its own (`exitOverride`): it throws a CommanderError instead, and
 * the caller turns that into exit code 2 (usage) or 0 (`--help`, `--version`).
 */
export function createProgram(options: CreateProgramOptions = {}): Command {
  const environment = options.environment ?? processEnvironment();
  const io = options.io ?? processIo;
  const program = createBaseProgram(io);

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
  registerDemoCommand(program, environment, io);
  return program;
}
