/**
 * `warden policy promote --event-type T`: moves one event type from monitor to enforce on evidence. The API
 * reads what enforcement would have done to the tenant's monitor-mode decisions of that type over the
 * window and pushes the active supervisor policy with the type switched to `enforce` as a draft, only when
 * the share it would have blocked or paused is within `--max-rate` (or with `--accept`). Activation stays a
 * second person's `warden policy activate`. See docs/supervisor.md, "Promoting monitor to enforce".
 */
import type { Command } from 'commander';
import type { PromotionRequest } from '@warden/client';
import {
  DEFAULT_PROMOTION_MAX_RATE,
  DEFAULT_PROMOTION_WINDOW,
  DecisionTypeSchema,
  EventTypeSchema,
  formatRate,
  parseLeadWindow,
  parseOrThrow,
  parseRatePercent,
  STOPPING_DECISIONS,
  TenantIdSchema,
  type PromotionEvidence,
} from '@warden/domain';
import type { CliEnvironment } from '../config.js';
import { CommandFailedError, UsageError } from '../errors.js';
import { writeJson, type CliIo } from '../output.js';
import { callApi } from './changesets.js';
import { formatPolicyVersion, policiesClientFor } from './policy-versions.js';

interface PromoteFlags {
  eventType: string;
  since: string;
  maxRate: string;
  tenant?: string;
  accept?: boolean;
  dryRun?: boolean;
  note?: string;
  url?: string;
  key?: string;
  json?: boolean;
}

/** The request, checked here first so a bad flag is exit 2 naming it without a round trip. */
function requestOf(flags: PromoteFlags): PromotionRequest {
  if (flags.accept && flags.dryRun) throw new UsageError('--accept and --dry-run exclude each other');
  const eventType = parseOrThrow(EventTypeSchema, flags.eventType, '--event-type');
  const since = parseLeadWindow(flags.since, '--since').kind;
  parseRatePercent(flags.maxRate, '--max-rate');
  return {
    event_type: eventType,
    since,
    max_rate: flags.maxRate.trim(),
    ...(flags.tenant !== undefined
      ? { tenant_id: parseOrThrow(TenantIdSchema, flags.tenant, '--tenant') }
      : {}),
  };
}

/** The evidence for a person: what enforcement would have decided, the rate, the codes, samples, the verdict. */
export function formatPromotionEvidence(evidence: PromotionEvidence, apiUrl: string): string {
  const { summary } = evidence;
  const setting =
    evidence.enforcement.by === 'default'
      ? 'enforcement.default'
      : `enforcement.${evidence.enforcement.by === 'tenant' ? 'tenants' : 'event_types'}`;
  const lines = [
    `Promote ${evidence.event_type} to enforce for tenant ${evidence.tenant_id} (now ${evidence.enforcement.mode} by ${setting}; ${evidence.active_version === null ? 'the bootstrap policy is in force' : `active version ${evidence.active_version}`})`,
    `  ${summary.decisions} decisions recorded in monitor mode for events since ${evidence.window_start} (${evidence.since})`,
    '',
    '  enforcement would have decided   decisions     rate',
  ];
  for (const type of DecisionTypeSchema.options) {
    const count = summary.would_have[type] ?? 0;
    const rate = summary.decisions === 0 ? 0 : count / summary.decisions;
    lines.push(`    ${type.padEnd(30)} ${String(count).padStart(9)}  ${formatRate(rate).padStart(7)}`);
  }
  lines.push(
    '',
    `  would have been ${STOPPING_DECISIONS.join(' or ')}: ${summary.stopped} of ${summary.decisions} (${formatRate(summary.stop_rate)}); threshold ${formatRate(evidence.max_rate)}`,
  );
  if (summary.top_findings.length > 0)
    lines.push(
      '',
      '  commonest findings of the decisions enforcement would have changed:',
      ...summary.top_findings.map((f) => `    ${f.code.padEnd(36)} ${f.count}`),
    );
  if (summary.samples.length > 0) {
    lines.push('', '  samples (each with the command that shows its decision):');
    for (const sample of summary.samples) {
      const path = `/v1/tasks/${encodeURIComponent(sample.task_id)}/decisions?event_id=${encodeURIComponent(sample.event_id)}`;
      lines.push(
        `    ${sample.would_have.padEnd(6)} task ${sample.task_id}, event ${sample.event_id}`,
        `      curl -H "Authorization: Bearer $WARDEN_API_KEY" '${apiUrl.replace(/\/+$/, '')}${path}'`,
      );
    }
  }
  lines.push(
    '',
    `  verdict: ${evidence.verdict.passes ? 'passes' : 'does not pass'}: ${evidence.verdict.reason}`,
  );
  return lines.join('\n') + '\n';
}

/** Adds `warden policy promote` to `warden policy`. */
export function registerPolicyPromoteCommand(policy: Command, environment: CliEnvironment, io: CliIo): void {
  policy
    .command('promote')
    .description(
      'switch one event type from monitor to enforce: show what enforcement would have done, and push the draft when within --max-rate (or with --accept)',
    )
    .requiredOption('--event-type <type>', 'the event type to enforce, e.g. TASK_CREATED')
    .option(
      '--since <window>',
      'the evidence window: 24h, 7d, any Nh / Nd up to 90d',
      DEFAULT_PROMOTION_WINDOW,
    )
    .option(
      '--max-rate <percent>',
      'the largest share of decisions enforcement would have blocked or paused, e.g. 0.5%',
      DEFAULT_PROMOTION_MAX_RATE,
    )
    .option(
      '--accept',
      'push the draft even above --max-rate (or without evidence); the evidence is its reason',
    )
    .option('--dry-run', 'show the evidence and the diff, store nothing (a policies:read key will do)')
    .option('--note <text>', 'why, added to the draft note the approver reads')
    .option('--tenant <tenant>', "a guard: refused unless it is the key's own tenant")
    .option('--url <url>', 'the Warden API (default: $WARDEN_API_URL or http://127.0.0.1:3000)')
    .option('--key <key>', 'the API key to act as (default: $WARDEN_API_KEY)')
    .option('--json', 'print the answer as JSON')
    .action(async (flags: PromoteFlags) => {
      const request = requestOf(flags);
      const { client, url } = policiesClientFor(environment, flags);
      if (flags.dryRun) {
        const evidence = await callApi(url, () => client.promotionEvidence(request));
        if (flags.json) writeJson(io, evidence);
        else
          io.out(
            formatPromotionEvidence(evidence, url) + '\n' + (evidence.diff.trimEnd() || '(no diff)') + '\n',
          );
        if (!evidence.verdict.passes)
          throw new CommandFailedError(`${evidence.verdict.reason}; a promotion would need --accept`);
        return;
      }
      const outcome = await callApi(url, () =>
        client.promote({
          ...request,
          ...(flags.accept ? { accept: true } : {}),
          ...(flags.note !== undefined ? { note: flags.note } : {}),
        }),
      );
      if (flags.json) writeJson(io, outcome);
      else {
        io.out(formatPromotionEvidence(outcome, url));
        if (outcome.draft) io.out('\n' + formatPolicyVersion(outcome.draft, { diff: true }));
      }
      if (!outcome.draft)
        throw new CommandFailedError(
          `${outcome.verdict.reason}; no draft stored (pass --accept to push it anyway: the evidence becomes its reason)`,
        );
      io.err(
        `draft ${outcome.draft.version} stored${outcome.accepted ? ' (accepted above the threshold)' : ''}; another person activates it with: warden policy activate ${outcome.draft.version}\n`,
      );
    });
}
