/**
 * `warden policy push | list | show | activate | rollback`: stored policy versions through the HTTP API, as
 * the API key given (`--key` or `WARDEN_API_KEY`). The API validates, diffs and audits; activation needs a
 * different person's `policies:approve` key from the one that pushed.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { PoliciesClient, type PolicyVersionView } from '@warden/client';
import {
  parseOrThrow,
  PolicyKindSchema,
  PolicyVersionNumberSchema,
  ValidationError,
  type PolicyKind,
} from '@warden/domain';
import type { CliEnvironment } from '../config.js';
import { writeJson, type CliIo } from '../output.js';
import { apiTarget } from '../api-target.js';
import { callApi } from './changesets.js';

interface ApiFlags {
  url?: string;
  key?: string;
  json?: boolean;
  kind?: string;
}

/** A policies client for `--url`/`WARDEN_API_URL`, acting as `--key`/`WARDEN_API_KEY`. */
export function policiesClientFor(
  environment: CliEnvironment,
  flags: { url?: string; key?: string },
): { client: PoliciesClient; url: string } {
  const { url, key } = apiTarget(environment, flags);
  return { client: new PoliciesClient({ baseUrl: url, apiKey: key, timeoutMs: 30_000 }), url };
}

const kindOf = (flags: ApiFlags): PolicyKind =>
  parseOrThrow(PolicyKindSchema, flags.kind ?? 'supervisor', '--kind');
const versionOf = (value: string, what: string): number =>
  parseOrThrow(PolicyVersionNumberSchema, value, what);

/** A version for a person at a terminal: status, who pushed and approved it, and its diff when asked. */
export function formatPolicyVersion(view: PolicyVersionView, options: { diff: boolean }): string {
  const lines = [
    `${view.kind} policy version ${view.version} (${view.status}; decisions record file version "${view.version_label}")`,
    `  pushed     ${view.pushed_at} by ${view.pushed_by_owner} (${view.pushed_by})${view.base_version === null ? '' : `, against version ${view.base_version}`}`,
  ];
  if (view.activated_at)
    lines.push(`  activated  ${view.activated_at} by ${view.activated_by_owner} (${view.activated_by})`);
  if (view.note) lines.push(`  note       ${view.note}`);
  lines.push(`  sha256     ${view.sha256}`);
  if (options.diff) lines.push(view.diff === '' ? '  (no diff)' : view.diff.trimEnd());
  return lines.join('\n') + '\n';
}

function formatList(views: PolicyVersionView[]): string {
  if (views.length === 0) return 'no stored versions (the bootstrap file is in force)\n';
  const rows = views.map(
    (v) =>
      `${String(v.version).padStart(7)}  ${v.status.padEnd(10)}  ${v.pushed_at.slice(0, 19)}  ${v.pushed_by_owner.padEnd(12)}  ${v.activated_by_owner ?? ''}`,
  );
  return [`version  status      pushed at            pushed by     activated by`, ...rows].join('\n') + '\n';
}

const withApiOptions = (command: Command) =>
  command
    .option('--kind <kind>', 'supervisor, writegate or lead-rules (default: supervisor)')
    .option('--url <url>', 'the Warden API (default: $WARDEN_API_URL or http://127.0.0.1:3000)')
    .option('--key <key>', 'the API key to act as (default: $WARDEN_API_KEY)')
    .option('--json', 'print the answer as JSON');

/** Adds the stored-version subcommands to `warden policy`. */
export function registerPolicyVersionCommands(policy: Command, environment: CliEnvironment, io: CliIo): void {
  withApiOptions(
    policy
      .command('push')
      .description(
        'store a policy file as a draft version, validated, and print its diff against the active one',
      )
      .requiredOption('-f, --file <file>', 'the policy file (YAML)')
      .option('--note <text>', 'what the change is for, shown to the approver'),
  ).action(async (flags: ApiFlags & { file: string; note?: string }) => {
    const kind = kindOf(flags);
    const file = resolve(environment.cwd, flags.file);
    let source: string;
    try {
      source = await readFile(file, 'utf8');
    } catch (error) {
      throw new ValidationError(`cannot read ${file}: ${(error as Error).message}`);
    }
    const { client, url } = policiesClientFor(environment, flags);
    const view = await callApi(url, () =>
      client.push({ kind, source, ...(flags.note ? { note: flags.note } : {}) }),
    );
    if (flags.json) writeJson(io, view);
    else {
      io.out(formatPolicyVersion(view, { diff: true }));
      io.err(
        `draft ${view.version} stored; another person activates it with: warden policy activate ${view.version}${kind === 'supervisor' ? '' : ` --kind ${kind}`}\n`,
      );
    }
  });

  withApiOptions(policy.command('list').description("the tenant's stored versions, newest first")).action(
    async (flags: ApiFlags) => {
      const kind = kindOf(flags);
      const { client, url } = policiesClientFor(environment, flags);
      const views = await callApi(url, () => client.list(kind));
      if (flags.json) writeJson(io, views);
      else io.out(formatList(views));
    },
  );

  withApiOptions(
    policy
      .command('show')
      .description('one stored version with its diff')
      .argument('<VERSION>', 'the version number'),
  ).action(async (version: string, flags: ApiFlags) => {
    const kind = kindOf(flags);
    const number = versionOf(version, 'VERSION');
    const { client, url } = policiesClientFor(environment, flags);
    const view = await callApi(url, () => client.get(kind, number));
    if (flags.json) writeJson(io, view);
    else io.out(formatPolicyVersion(view, { diff: true }));
  });

  withApiOptions(
    policy
      .command('activate')
      .description('activate a draft (a policies:approve key of someone other than the pusher)')
      .argument('<VERSION>', 'the draft version number')
      .option('--note <text>', 'why it was approved; recorded in the audit trail'),
  ).action(async (version: string, flags: ApiFlags & { note?: string }) => {
    const kind = kindOf(flags);
    const number = versionOf(version, 'VERSION');
    const { client, url } = policiesClientFor(environment, flags);
    const view = await callApi(url, () =>
      client.activate(kind, number, flags.note ? { note: flags.note } : {}),
    );
    if (flags.json) writeJson(io, view);
    else io.out(formatPolicyVersion(view, { diff: false }));
  });

  withApiOptions(
    policy
      .command('rollback')
      .description('make an earlier version that was active once the active version again')
      .requiredOption('--to <version>', 'the version to go back to')
      .requiredOption('--reason <text>', 'why; recorded in the audit trail'),
  ).action(async (flags: ApiFlags & { to: string; reason: string }) => {
    const kind = kindOf(flags);
    const number = versionOf(flags.to, '--to');
    const { client, url } = policiesClientFor(environment, flags);
    const view = await callApi(url, () => client.rollback(kind, number, flags.reason));
    if (flags.json) writeJson(io, view);
    else io.out(formatPolicyVersion(view, { diff: false }));
  });
}
