/**
 * Every top-level `warden` command by name, with how the top-level help lists it and a loader of the module that
 * registers it. The `warden` process (main.ts) loads only the module of the command it runs, so `warden
 * preflight` never loads the API client and `warden --help` loads no command at all: most of a command's start-up
 * time was loading the modules of the others.
 *
 * A new command goes in program.ts (which registers every command, for in-process use) and here; the CLI's
 * tests fail when the two disagree (a name, a help line). A command missing here still runs, only slower:
 * main.ts falls back to the whole program for a name it does not know.
 */
import type { Command } from 'commander';
import type { CliEnvironment } from './config.js';
import type { CliIo } from './output.js';

export type RegisterCommand = (program: Command, environment: CliEnvironment, io: CliIo) => void;

export interface CommandEntry {
  name: string;
  /** The command as the top-level help lists it (`migrate [options]`). */
  term: string;
  /** Its description, word for word as its module registers it. */
  description: string;
  load: () => Promise<RegisterCommand>;
}

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'migrate',
    term: 'migrate [options]',
    description: 'apply pending database migrations (safe to repeat)',
    load: async () => (await import('./commands/migrate.js')).registerMigrateCommand,
  },
  {
    name: 'keys',
    term: 'keys',
    description: 'create, list and revoke API keys',
    load: async () => (await import('./commands/keys.js')).registerKeysCommand,
  },
  {
    name: 'preflight',
    term: 'preflight [options]',
    description:
      "check configuration (against each service's own schema), policy files, Postgres, migrations, Redis and queues; exit 1 listing what is wrong",
    load: async () => (await import('./commands/preflight.js')).registerPreflightCommand,
  },
  {
    name: 'audit',
    term: 'audit',
    description: 'inspect the tamper-evident audit trail',
    load: async () => (await import('./commands/audit.js')).registerAuditCommand,
  },
  {
    name: 'lead',
    term: 'lead',
    description: 'mine the audit trail for systemic risk (lead scans)',
    load: async () => (await import('./commands/lead.js')).registerLeadCommand,
  },
  {
    name: 'changesets',
    term: 'changesets',
    description: 'submit, inspect, approve and reject change sets through the API',
    load: async () => (await import('./commands/changesets.js')).registerChangeSetsCommand,
  },
  {
    name: 'gates',
    term: 'gates',
    description:
      "list open gates; a person's acts on paused and blocked tasks: release or deny a gate, unblock a task",
    load: async () => (await import('./commands/gates.js')).registerGatesCommand,
  },
  {
    name: 'triggers',
    term: 'triggers',
    description: 'list and operate cron triggers (pause, resume, run now, status, history)',
    load: async () => (await import('./commands/triggers.js')).registerTriggersCommand,
  },
  {
    name: 'policy',
    term: 'policy',
    description: 'test policy files, and push, activate and roll back stored policy versions',
    load: async () => (await import('./commands/policy.js')).registerPolicyCommand,
  },
  {
    name: 'notifications',
    term: 'notifications',
    description: "a tenant's notification channels (webhook, Slack) and their delivery log",
    load: async () => (await import('./commands/notifications.js')).registerNotificationsCommand,
  },
  {
    name: 'demo',
    term: 'demo [options]',
    description:
      'drive a short story against a running stack (npm run up): a blocked task, a gate released, a cron fallback, a lead finding, a change set applied',
    load: async () => (await import('./commands/demo.js')).registerDemoCommand,
  },
];
