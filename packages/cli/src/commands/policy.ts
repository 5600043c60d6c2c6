/**
 * `warden policy test -f FILE`: runs the unit tests a supervisor policy file carries (`tests:`), without a
 * database, and shows for each failing event what was expected and what the policy decided.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import {
  builtInPolicies,
  parsePolicyYaml,
  runPolicyTests,
  SupervisorPolicyFileSchema,
  type PolicyTestResult,
  type SupervisorPolicyFile,
} from '@warden/domain';
import type { CliEnvironment } from '../config.js';
import { CommandFailedError, UsageError } from '../errors.js';
import { plural, writeJson, type CliIo } from '../output.js';
import { runPolicyBacktest } from './policy-backtest.js';
import { registerPolicyPromoteCommand } from './policy-promote.js';
import { registerPolicyVersionCommands } from './policy-versions.js';

export interface PolicyTestReport {
  file: string;
  /** The policy version the file declares. */
  version: string;
  passed: number;
  failed: number;
  results: PolicyTestResult[];
}

/** Reads and validates a supervisor policy file. A bad file is a ValidationError naming the field (exit 2). */
async function readPolicyFile(file: string): Promise<SupervisorPolicyFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read the policy file ${file}: ${(error as Error).message}`);
  }
  return parsePolicyYaml(text, SupervisorPolicyFileSchema, file);
}

/** Reads, validates and tests a supervisor policy file. A bad file is a ValidationError naming the field (exit 2). */
export async function testPolicyFile(file: string): Promise<PolicyTestReport> {
  const config = await readPolicyFile(file);
  const results = runPolicyTests(config, config.tests, builtInPolicies());
  const passed = results.filter((r) => r.passed).length;
  return { file, version: config.version, passed, failed: results.length - passed, results };
}

/** One line per test; under a failing one, each event that got something else, with what differs. */
export function formatPolicyTestReport(report: PolicyTestReport): string {
  const lines: string[] = [];
  for (const result of report.results) {
    lines.push(`  ${result.passed ? 'ok  ' : 'FAIL'}  ${result.name}`);
    if (result.passed) continue;
    result.steps.forEach((step, index) => {
      if (step.differences.length === 0) return;
      lines.push(`        event ${index + 1} (${step.event_type}):`);
      for (const difference of step.differences) lines.push(`          - ${difference}`);
    });
  }
  if (report.results.length === 0)
    lines.push(`  ${report.file} has no tests (add them under \`tests:\`; see docs/supervisor.md)`);
  lines.push(
    `${plural(report.passed, 'test')} passed, ${report.failed} failed (policy version ${report.version})`,
  );
  return lines.join('\n') + '\n';
}

export function registerPolicyCommand(program: Command, environment: CliEnvironment, io: CliIo): void {
  const policy = program
    .command('policy')
    .description('test policy files, and push, activate and roll back stored policy versions');
  policy
    .command('test')
    .description(
      'run the tests a supervisor policy file carries, without a database (exit 1 when one fails); with --since, backtest it over the event archive instead',
    )
    .requiredOption('-f, --file <file>', 'the supervisor policy file (YAML)')
    .option(
      '--since <window>',
      'backtest over the events decided in this window: 24h, 30d, any Nh / Nd up to 90d',
    )
    .option('--tenant <tenant>', 'with --since: only this tenant (default: every tenant)')
    .option(
      '--fail-on <rule>',
      'with --since: exit 1 when a transition exceeds a share of the replayed events or a count, e.g. "ALLOW->BLOCK>0.5%" (repeatable)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option('--json', 'print the results as JSON')
    .action(
      async (flags: { file: string; json?: boolean; since?: string; tenant?: string; failOn?: string[] }) => {
        const file = resolve(environment.cwd, flags.file);
        if (flags.since === undefined) {
          if (flags.tenant !== undefined || flags.failOn !== undefined)
            throw new UsageError('--tenant and --fail-on need --since (they apply to a backtest)');
          const report = await testPolicyFile(file);
          if (flags.json) writeJson(io, report);
          else io.out(formatPolicyTestReport(report));
          if (report.failed > 0)
            throw new CommandFailedError(`${plural(report.failed, 'policy test')} failed`);
          return;
        }
        const policy = await readPolicyFile(file);
        await runPolicyBacktest(
          flags.file,
          policy,
          {
            since: flags.since,
            ...(flags.tenant !== undefined ? { tenant: flags.tenant } : {}),
            ...(flags.failOn ? { failOn: flags.failOn } : {}),
            ...(flags.json ? { json: true } : {}),
          },
          environment,
          io,
        );
      },
    );
  registerPolicyVersionCommands(policy, environment, io);
  registerPolicyPromoteCommand(policy, environment, io);
}
