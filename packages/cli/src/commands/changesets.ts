/**
 * `warden changesets submit FILE | list | get ID | approve ID | reject ID`: change sets through the HTTP API, as the
 * API key given (`--key` or `WARDEN_API_KEY`) — the API records who submitted and who approved, and refuses an
 * approval by the submitter.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import {
  WardenApiError,
  WardenClient,
  WardenConnectionError,
  sealChangeSet,
  type ChangeSetSummaryView,
  type ChangeSetView,
} from '@warden/client';
import {
  ChangeSetIdSchema,
  ChangeSetStatusSchema,
  ChangeSetSubmissionSchema,
  ValidationError,
  type ChangeSetStatus,
  parseOrThrow,
  parsePolicyYaml,
  type ChangeSetSubmissionInput,
} from '@warden/domain';
import { apiTarget } from '../api-target.js';
import type { CliEnvironment } from '../config.js';
import { CommandFailedError, EXIT_USAGE } from '../errors.js';
import { formatColumns, writeJson, type CliIo } from '../output.js';
import { runWatched, withWatchOptions, type WatchFlags } from '../watch.js';

export { ApiEnvSchema } from '../api-target.js';

interface ApiFlags {
  url?: string;
  key?: string;
  json?: boolean;
}

/** A client of the API and key {@link apiTarget} finds. */
export function clientFor(
  environment: CliEnvironment,
  flags: { url?: string; key?: string },
): { client: WardenClient; url: string } {
  const { url, key } = apiTarget(environment, flags);
  try {
    return { client: new WardenClient({ baseUrl: url, apiKey: key, retries: 2, timeoutMs: 30_000 }), url };
  } catch (error) {
    throw new ValidationError(`--url: ${(error as Error).message}`);
  }
}

/** API errors as one line and an exit code: 400 is bad input (2), anything else a failure (1). */
export async function callApi<T>(url: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof WardenApiError) {
      const details =
        error.details.length > 0
          ? ` (${error.details.map((d) => `${d.path}: ${d.message}`).join('; ')})`
          : '';
      throw new CommandFailedError(
        `${error.status} ${error.code}: ${error.message}${details}`,
        error.status === 400 ? EXIT_USAGE : 1,
      );
    }
    if (error instanceof WardenConnectionError)
      throw new CommandFailedError(`cannot reach the Warden API at ${url}: ${error.message}`);
    throw error;
  }
}

/**
 * Reads a submission (`{ plan, changeset }`) from a JSON or YAML file. With `seal`, fills in missing content hashes
 * and the checksum first. Problems name the file and the field.
 */
export async function readSubmissionFile(
  file: string,
  options: { seal: boolean },
): Promise<ChangeSetSubmissionInput> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ValidationError(`cannot read ${file}: ${(error as Error).message}`);
  }
  // JSON is YAML, so one parser reads both and reports the line of a syntax error.
  const raw = parsePolicyYaml(
    text,
    z.object({ plan: z.unknown(), changeset: z.record(z.string(), z.unknown()) }).loose(),
    file,
  ) as ChangeSetSubmissionInput;
  const submission = options.seal ? sealChangeSet(raw) : raw;
  if (!options.seal && submission.changeset.checksum === undefined) {
    throw new ValidationError(
      `${file}: changeset.checksum is missing; compute it (SHA-256 of the canonical JSON of changes) or pass --seal`,
    );
  }
  try {
    parseOrThrow(ChangeSetSubmissionSchema, submission, file);
  } catch (error) {
    if (error instanceof ValidationError)
      throw new ValidationError(error.message.replace(/^invalid /, ''), error.details);
    throw error;
  }
  return submission;
}

/** The change set for a person at a terminal: what was decided and why, then every step. */
export function formatChangeSet(view: ChangeSetView): string {
  const lines = [
    `change set ${view.changeset_id} (plan ${view.plan_id}) on workspace "${view.workspace}"`,
    `  status    ${view.status}`,
    `  verdict   ${view.verdict.verdict}, risk ${view.verdict.risk_effective} (policy ${view.verdict.policy_hash.slice(0, 12)}, gate v${view.verdict.gate_version})`,
    `  approval  ${view.approval.state.replace('_', ' ')}${view.approval.decided_by ? ` by ${view.approval.decided_by}` : ''}${view.approval.note ? ` (${view.approval.note})` : ''}`,
    `  checksum  ${view.checksum}`,
    `  changes   ${view.changes.length} (${(['create', 'update', 'delete'] as const).map((op) => `${view.changes.filter((c) => c.operation === op).length} ${op}`).join(', ')})`,
  ];
  const findings = view.verdict.reasons.filter((r) => r.outcome !== 'pass' && r.outcome !== 'skipped');
  if (findings.length > 0) {
    lines.push('  reasons:');
    for (const reason of findings)
      lines.push(`    ${reason.outcome.padEnd(13)} ${reason.code.padEnd(26)} ${reason.message}`);
  }
  if (view.execution.error)
    lines.push(`  error     ${view.execution.error.code}: ${view.execution.error.message}`);
  if (view.steps.length > 0) {
    lines.push('  steps:');
    for (const step of view.steps)
      lines.push(`    ${step.at}  ${step.step.padEnd(16)} ${step.status.padEnd(8)} ${step.message}`);
  }
  return lines.join('\n') + '\n';
}

/** The list as a table, one change set a line, for a person at a terminal. */
export function formatChangeSetList(items: readonly ChangeSetSummaryView[]): string {
  const rows = [
    [
      'CHANGE SET',
      'WORKSPACE',
      'STATUS',
      'VERDICT',
      'RISK',
      'APPROVAL',
      'SUBMITTED BY',
      'SUBMITTED',
      'APPROVAL EXPIRES',
    ],
    ...items.map((c) => [
      c.changeset_id,
      c.workspace,
      c.status,
      c.verdict,
      c.risk_effective,
      c.approval_state.replace('_', ' '),
      c.submitted_by,
      c.submitted_at.slice(0, 19),
      c.approval_state === 'pending' ? (c.approval_expires_at?.slice(0, 19) ?? 'never') : '-',
    ]),
  ];
  return formatColumns(rows);
}

function parseStatus(value: string): ChangeSetStatus {
  const result = ChangeSetStatusSchema.safeParse(value);
  if (!result.success)
    throw new ValidationError(
      `--status must be one of ${ChangeSetStatusSchema.options.join(', ')}, got "${value}"`,
    );
  return result.data;
}

function parseLimit(value: string): number {
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100)
    throw new ValidationError(`--limit must be a whole number from 1 to 100, got "${value}"`);
  return limit;
}

function print(io: CliIo, view: ChangeSetView, json: boolean | undefined): void {
  if (json) writeJson(io, view);
  else io.out(formatChangeSet(view));
}

function parseId(value: string): string {
  const result = ChangeSetIdSchema.safeParse(value);
  if (!result.success)
    throw new ValidationError(
      `invalid change set id "${value}": ${result.error.issues.map((i) => i.message).join('; ')}`,
    );
  return result.data;
}

function parseTimeout(value: string | undefined): number {
  const seconds = value === undefined ? 120 : Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new ValidationError(`--timeout must be a positive number of seconds, got "${value}"`);
  return seconds * 1000;
}

const withApiOptions = (command: Command) =>
  command
    .option('--url <url>', 'the Warden API (default: $WARDEN_API_URL or http://127.0.0.1:3000)')
    .option('--key <key>', 'the API key to act as (default: $WARDEN_API_KEY)')
    .option('--json', 'print the change set as JSON');

export function registerChangeSetsCommand(program: Command, environment: CliEnvironment, io: CliIo): void {
  const changesets = program
    .command('changesets')
    .description('submit, inspect, approve and reject change sets through the API');

  withApiOptions(
    changesets
      .command('submit')
      .description(
        'submit a plan and its change set ({ plan, changeset } as JSON or YAML); exit 1 when the WriteGate denies it',
      )
      .argument('<FILE>', 'the submission file')
      .option('--seal', 'compute missing content hashes and the checksum before sending')
      .option('--wait', 'wait until the change set is finished; exit 1 unless it completed')
      .option('--timeout <seconds>', 'with --wait: give up after this long (default 120)'),
  ).action(async (file: string, flags: ApiFlags & { seal?: boolean; wait?: boolean; timeout?: string }) => {
    const timeoutMs = parseTimeout(flags.timeout);
    const submission = await readSubmissionFile(resolve(environment.cwd, file), {
      seal: flags.seal ?? false,
    });
    const { client, url } = clientFor(environment, flags);
    let view = await callApi(url, () => client.submitChangeSet(submission));
    if (flags.wait && view.status === 'pending' && view.approval.state !== 'pending')
      view = await callApi(url, () => client.waitForChangeSet(view.changeset_id, { timeoutMs }));
    print(io, view, flags.json);
    if (view.status === 'denied')
      throw new CommandFailedError(`change set ${view.changeset_id} was denied by the WriteGate`);
    if (flags.wait && view.approval.state === 'pending')
      io.err(`change set ${view.changeset_id} waits for approval by another API key\n`);
    else if (flags.wait && view.status !== 'completed')
      throw new CommandFailedError(
        `change set ${view.changeset_id} ended ${view.status}${view.execution.error ? `: ${view.execution.error.message}` : ''}`,
      );
  });

  withWatchOptions(
    withApiOptions(
      changesets
        .command('list')
        .description(
          "the tenant's change sets, newest first; --waiting: those waiting for a person's approval",
        )
        .option('--waiting', 'only change sets waiting for approval')
        .option('--status <status>', `only this status (${ChangeSetStatusSchema.options.join(', ')})`)
        .option('--limit <n>', 'page size, 1-100', '50')
        .option('--cursor <cursor>', 'next_cursor of the previous page'),
    ),
  ).action(
    async (
      flags: ApiFlags & WatchFlags & { waiting?: boolean; status?: string; limit: string; cursor?: string },
    ) => {
      const limit = parseLimit(flags.limit);
      const status = flags.status === undefined ? undefined : parseStatus(flags.status);
      const { client, url } = clientFor(environment, flags);
      await runWatched(io, flags, async (out) => {
        const page = await callApi(url, () =>
          client.listChangeSets({
            limit,
            ...(status === undefined ? {} : { status }),
            ...(flags.waiting ? { approval: 'pending' as const } : {}),
            ...(flags.cursor === undefined ? {} : { cursor: flags.cursor }),
          }),
        );
        if (flags.json) return writeJson(out, page);
        if (page.items.length === 0)
          return out.out(flags.waiting ? 'no change sets wait for approval\n' : 'no change sets\n');
        out.out(formatChangeSetList(page.items));
        if (page.next_cursor) out.out(`more: --cursor ${page.next_cursor}\n`);
      });
    },
  );

  withApiOptions(
    changesets
      .command('get')
      .description('show a change set: verdict, approval, status and every step')
      .argument('<ID>', 'the change set id'),
  ).action(async (id: string, flags: ApiFlags) => {
    const changesetId = parseId(id);
    const { client, url } = clientFor(environment, flags);
    print(io, await callApi(url, () => client.getChangeSet(changesetId)), flags.json);
  });

  withApiOptions(
    changesets
      .command('approve')
      .description('approve a change set waiting for approval (not with the key that submitted it)')
      .argument('<ID>', 'the change set id')
      .option('--checksum <sha256>', 'the checksum you reviewed (default: the one shown by `get` now)')
      .option('--note <text>', 'a note for the audit trail')
      .option('--wait', 'wait until the change set is finished; exit 1 unless it completed')
      .option('--timeout <seconds>', 'with --wait: give up after this long (default 120)'),
  ).action(
    async (
      id: string,
      flags: ApiFlags & { checksum?: string; note?: string; wait?: boolean; timeout?: string },
    ) => {
      const changesetId = parseId(id);
      const timeoutMs = parseTimeout(flags.timeout);
      const { client, url } = clientFor(environment, flags);
      // Without --checksum, bind the approval to the change set as it is read now.
      const checksum =
        flags.checksum ?? (await callApi(url, () => client.getChangeSet(changesetId))).checksum;
      let view = await callApi(url, () =>
        client.approveChangeSet(changesetId, { checksum, ...(flags.note ? { note: flags.note } : {}) }),
      );
      if (flags.wait) view = await callApi(url, () => client.waitForChangeSet(changesetId, { timeoutMs }));
      print(io, view, flags.json);
      if (flags.wait && view.status !== 'completed')
        throw new CommandFailedError(
          `change set ${changesetId} ended ${view.status}${view.execution.error ? `: ${view.execution.error.message}` : ''}`,
        );
    },
  );

  withApiOptions(
    changesets
      .command('reject')
      .description('reject a change set waiting for approval (final)')
      .argument('<ID>', 'the change set id')
      .option('--reason <text>', 'why, for the audit trail'),
  ).action(async (id: string, flags: ApiFlags & { reason?: string }) => {
    const changesetId = parseId(id);
    const { client, url } = clientFor(environment, flags);
    print(
      io,
      await callApi(url, () =>
        client.rejectChangeSet(changesetId, flags.reason ? { reason: flags.reason } : {}),
      ),
      flags.json,
    );
  });
}
