/**
 * `warden gates release TASK GATE | deny TASK GATE --reason R | unblock TASK --reason R`: a person's acts on a
 * paused or blocked task, through the HTTP API as the API key given (`--key` or `WARDEN_API_KEY`) — so the
 * scope check (`tasks:approve`), separation of duties and the audit row naming the key's owner are the API's.
 * GATE is the gate id or the checkpoint of the task's open gate.
 *
 * `warden gates list --tenant T` reads the open gates from Postgres (`DATABASE_URL`), as `keys list` and
 * `triggers list` read theirs: an operator's view, which changes nothing.
 */
import type { Command } from 'commander';
import { assertMigrationsCurrent, listWaitingItems, type WaitingGate } from '@warden/db';
import { TenantIdSchema, ValidationError, type Gate } from '@warden/domain';
import { loadConfig, type CliEnvironment } from '../config.js';
import { formatColumns, writeJson, type CliIo } from '../output.js';
import { closePostgres, connectPostgres } from '../postgres.js';
import { runWatched, withWatchOptions, type WatchFlags } from '../watch.js';
import { callApi, clientFor } from './changesets.js';

interface ApiFlags {
  url?: string;
  key?: string;
  json?: boolean;
}

const withApiOptions = (command: Command) =>
  command
    .option('--url <url>', 'the Warden API (default: $WARDEN_API_URL or http://127.0.0.1:3000)')
    .option('--key <key>', "a person's API key with tasks:approve (default: $WARDEN_API_KEY)")
    .option('--json', 'print the answer as JSON');

function reasonOf(reason: string | undefined): string {
  if (reason === undefined || reason.trim() === '')
    throw new ValidationError('--reason is required: say why (it joins the audit trail)');
  return reason;
}

function printGate(io: CliIo, gate: Gate, verb: string, json: boolean | undefined): void {
  if (json) return writeJson(io, gate);
  io.out(`${verb} gate ${gate.gate_id} (checkpoint ${gate.checkpoint}) of task ${gate.task_id}\n`);
}

/** The open gates as a table, newest first, for a person at a terminal. */
export function formatGateList(gates: readonly WaitingGate[]): string {
  const rows = [
    ['GATE', 'TASK', 'CHECKPOINT', 'TASK STATUS', 'OPENED', 'EXPIRES', 'REASON'],
    ...gates.map((g) => [
      g.gate_id,
      g.task_id,
      g.checkpoint,
      g.task_status,
      g.opened_at.slice(0, 19),
      g.expires_at?.slice(0, 19) ?? '-',
      g.reason,
    ]),
  ];
  return formatColumns(rows);
}

export function registerGatesCommand(program: Command, environment: CliEnvironment, io: CliIo): void {
  const gates = program
    .command('gates')
    .description(
      "list open gates; a person's acts on paused and blocked tasks: release or deny a gate, unblock a task",
    );

  withWatchOptions(
    gates
      .command('list')
      .description("a tenant's open gates, newest first (from Postgres: DATABASE_URL), with their deadlines")
      .requiredOption('--tenant <tenant>', 'tenant id')
      .option('--json', 'print the gates as a JSON array'),
  ).action(async (flags: WatchFlags & { tenant: string; json?: boolean }) => {
    const tenant = TenantIdSchema.safeParse(flags.tenant);
    if (!tenant.success)
      throw new ValidationError(
        `invalid --tenant "${flags.tenant}": ${tenant.error.issues.map((issue) => issue.message).join('; ')}`,
      );
    const config = loadConfig(environment);
    await runWatched(io, flags, async (out) => {
      const db = await connectPostgres(config.DATABASE_URL);
      let open: WaitingGate[];
      try {
        await assertMigrationsCurrent(db);
        open = (await listWaitingItems(db, tenant.data)).gates;
      } finally {
        await closePostgres(db);
      }
      if (flags.json) return writeJson(out, open);
      if (open.length === 0) return out.out(`no open gates for tenant ${tenant.data}\n`);
      out.out(formatGateList(open));
    });
  });

  withApiOptions(
    gates
      .command('release')
      .description('release a gate: the task goes on once no gate holds it')
      .argument('<task>', 'the task id')
      .argument('<gate>', "the gate id, or the checkpoint of the task's open gate")
      .option('--note <text>', 'why (kept in the audit row)'),
  ).action(async (taskId: string, gate: string, flags: ApiFlags & { note?: string }) => {
    const { client, url } = clientFor(environment, flags);
    const released = await callApi(url, () =>
      client.releaseGate(taskId, gate, flags.note === undefined ? {} : { note: flags.note }),
    );
    printGate(io, released, 'released', flags.json);
  });

  withApiOptions(
    gates
      .command('deny')
      .description('deny a gate: it closes and the task is blocked (only an unblock lets it go on)')
      .argument('<task>', 'the task id')
      .argument('<gate>', "the gate id, or the checkpoint of the task's open gate")
      .option('--reason <text>', 'why the task may not go on (required)'),
  ).action(async (taskId: string, gate: string, flags: ApiFlags & { reason?: string }) => {
    const reason = reasonOf(flags.reason);
    const { client, url } = clientFor(environment, flags);
    printGate(io, await callApi(url, () => client.denyGate(taskId, gate, reason)), 'denied', flags.json);
  });

  withApiOptions(
    gates
      .command('unblock')
      .description('unblock a blocked task, with a reason (back to running, or paused while a gate is open)')
      .argument('<task>', 'the task id')
      .option('--reason <text>', 'why the task may go on (required)'),
  ).action(async (taskId: string, flags: ApiFlags & { reason?: string }) => {
    const reason = reasonOf(flags.reason);
    const { client, url } = clientFor(environment, flags);
    const answer = await callApi(url, () => client.unblockTask(taskId, reason));
    if (flags.json) return writeJson(io, answer);
    io.out(`unblocked task ${taskId}\n`);
  });
}
