/**
 * Rolling a migration back when a red line trips: the report (what tripped, the last runs, samples of where
 * the outputs differed, next steps), the follow-up task that carries it to a person, and the audit rows.
 * Pure: the scheduler gathers the evidence and writes all of it in the transaction that finished the run.
 */
import { canonicalJson, deterministicId } from '../canonical-json.js';
import type { DecisionMode, ExecutionStatus } from './execution.js';
import type { Consistency, OutputDifference, RedLine } from './migration.js';
import { triggerAudit, type AuditDraft } from './trigger-audits.js';
import type { TriggerMode } from './trigger-definition.js';

export interface RollbackRun {
  execution_id: string;
  scheduled_for: string;
  status: ExecutionStatus;
  decision_mode: DecisionMode | null;
  agent_outcome: string | null;
  error: string | null;
  equal: boolean | null;
}

export interface RollbackReport {
  title: string;
  event_name: string;
  red_line: RedLine;
  detail: string;
  rolled_back_at: string;
  from: { migration_weight: number; mode: TriggerMode };
  to: { migration_weight: number; mode: TriggerMode };
  consistency: Consistency;
  last_runs: RollbackRun[];
  diff_samples: Array<{ execution_id: string; differences: OutputDifference[] }>;
  next_steps: string[];
  /** The same, for people (the follow-up task and `warden triggers status`). */
  markdown: string;
}

/** What a rollback report is built from: the red line that tripped, and the evidence. */
export interface RollbackFacts {
  event_name: string;
  red_line: RedLine;
  detail: string;
  now: Date;
  /** The migration settings rolled back from. */
  from: { migration_weight: number; mode: TriggerMode };
  consistency: Consistency;
  /** The trigger's latest finished runs, newest first. */
  last_runs: RollbackRun[];
  /** Recent shadow runs whose outputs differed. */
  diff_samples: Array<{ execution_id: string; differences: OutputDifference[] }>;
}

/** The generated rollback report: what tripped, the last runs, and samples of where outputs differed. */
export function buildRollbackReport(input: RollbackFacts): RollbackReport {
  const to = { migration_weight: 0, mode: 'live' as TriggerMode };
  const next_steps = [
    'Read the failing runs (`warden triggers history ' +
      input.event_name +
      '`) and the agent logs for their agent_run_id.',
    'Fix the agent, then run the trigger in shadow mode again (`mode: shadow`) until consistency meets the bar.',
    'Raise migration_weight step by step (e.g. 0.1 → 0.5 → 1); each change is audited.',
  ];
  const lines = [
    `# Migration rolled back: ${input.event_name}`,
    '',
    `- red line: **${input.red_line}** — ${input.detail}`,
    `- at: ${input.now.toISOString()}`,
    `- weight ${input.from.migration_weight} → 0, mode ${input.from.mode} → live: the fallback serves every run`,
    `- consistency: ${input.consistency.rate === null ? 'n/a' : `${(input.consistency.rate * 100).toFixed(1)} %`} over ${input.consistency.samples} comparisons`,
    '',
    '## Last runs',
    '',
    '| scheduled for | status | mode | agent | equal | error |',
    '|---|---|---|---|---|---|',
    ...input.last_runs.map(
      (r) =>
        `| ${r.scheduled_for} | ${r.status} | ${r.decision_mode ?? ''} | ${r.agent_outcome ?? ''} | ${r.equal === null ? '' : r.equal ? 'yes' : 'no'} | ${(r.error ?? '').replace(/\|/g, '\\|').slice(0, 120)} |`,
    ),
    '',
    '## Differences',
    '',
    ...(input.diff_samples.length === 0
      ? ['(none recorded)']
      : input.diff_samples.flatMap((s) => [
          `- ${s.execution_id}:`,
          ...s.differences.map(
            (d) =>
              `  - \`${d.key}\`: agent ${canonicalJson(d.agent ?? null)} ≠ fallback ${canonicalJson(d.fallback ?? null)}`,
          ),
        ])),
    '',
    '## Next steps',
    '',
    ...next_steps.map((s, i) => `${i + 1}. ${s}`),
  ];
  return {
    title: `Migration of ${input.event_name} rolled back: ${input.red_line}`,
    event_name: input.event_name,
    red_line: input.red_line,
    detail: input.detail,
    rolled_back_at: input.now.toISOString(),
    from: input.from,
    to,
    consistency: input.consistency,
    last_runs: input.last_runs,
    diff_samples: input.diff_samples,
    next_steps,
    markdown: lines.join('\n') + '\n',
  };
}

/** A rolled-back migration as it is written: the report, its follow-up task and the audit rows. */
export interface RollbackPlan {
  report_id: string;
  follow_up_task_id: string;
  report: RollbackReport;
  /** The follow-up task's metadata: work for a person, ready to pick up. */
  follow_up_metadata: Record<string, unknown>;
  /** `MIGRATION_ROLLED_BACK` on the trigger's trail, `FOLLOW_UP_CREATED` on the follow-up task's. */
  audits: AuditDraft[];
}

/**
 * Everything a rollback writes; its ids are derived from the trigger and the time, so a repeat finds the same
 * rows.
 */
export function planRollback(input: RollbackFacts & { trigger_id: string }): RollbackPlan {
  const report = buildRollbackReport(input);
  const reportId = deterministicId('cron-rollback', input.trigger_id, input.now.toISOString());
  const taskId = `cron-rollback-${input.event_name}-${reportId.slice(0, 8)}`;
  return {
    report_id: reportId,
    follow_up_task_id: taskId,
    report,
    follow_up_metadata: {
      kind: 'follow_up',
      source: 'scheduler',
      title: report.title,
      priority: 2,
      trigger: input.event_name,
      red_line: input.red_line,
      report_id: reportId,
      report: {
        detail: report.detail,
        from: report.from,
        to: report.to,
        consistency: report.consistency,
        next_steps: report.next_steps,
      },
      report_markdown: report.markdown,
    },
    audits: [
      triggerAudit(input.event_name, 'MIGRATION_ROLLED_BACK', 'warn', {
        event_name: input.event_name,
        red_line: input.red_line,
        detail: input.detail,
        from: input.from,
        to: report.to,
        report_id: reportId,
        follow_up_task_id: taskId,
        consistency: input.consistency,
        by: 'scheduler',
      }),
      {
        task_id: taskId,
        event_type: 'FOLLOW_UP_CREATED',
        level: 'warn',
        payload: {
          source: 'scheduler',
          reason: 'MIGRATION_ROLLED_BACK',
          trigger: input.event_name,
          report_id: reportId,
          title: report.title,
        },
      },
    ],
  };
}
