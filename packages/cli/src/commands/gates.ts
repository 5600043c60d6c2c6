/**
 * `warden gates release TASK GATE | deny TASK GATE --reason R | unblock TASK --reason R`: a person's acts on a
 * paused or blocked task, through the HTTP API as the API key given (`--key` or `WARDEN_API_KEY`) — so the
 * scope check (`tasks:approve`), separation of duties and the audit row naming the key's owner are the API's.
 * GATE is the gate id or the checkpoint of the task's open gate.
 */
import type { Command } from 'commander';
import { ValidationError, type Gate } from '@warden/domain';
import type { CliEnvironment } from '../config.js';
import { writeJson, type CliIo } from '../output.js';
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

export function registerGatesCommand(program: Command, environment: CliEnvironment, io: CliIo): void {
  const gates = program
    .command('gates')
    .description("a person's acts on paused and blocked tasks: release or deny a gate, unblock a task");

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
