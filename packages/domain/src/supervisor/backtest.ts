/**
 * Backtests: what a candidate policy would have decided for archived events, side by side with what was
 * recorded. Pure: the caller streams a window of the event archive, one task at a time in inbox order, into a
 * {@link Backtest}, and reads the report at the end. Each task starts from the context its first archived
 * event saw; after that the candidate's own outcomes are carried forward (a task it blocks stays blocked),
 * so "blocked earlier / later" is the candidate's story of the task, not a per-event guess.
 */
import { DecisionTypeSchema, type DecisionType } from '../decisions.js';
import type { TaskEvent } from '../events.js';
import { ValidationError } from '../errors.js';
import type { SupervisorPolicyFile } from '../policy-file.js';
import type { TaskStatus } from '../tasks.js';
import { decideInOrder, taskStateKey, type DecisionState } from './decide-in-order.js';
import type { RunningTaskResources } from './policy.js';
import type { PolicyRegistry } from './policy-registry.js';

/** One archived event with what the policy saw and what was recorded. */
export interface ArchivedEvent {
  event: TaskEvent;
  /** The task before this event, as the recorded policy saw it. */
  task: { status: TaskStatus | null; metadata: Record<string, unknown>; retry_count: number };
  running_tasks: RunningTaskResources[];
  recorded: { decision_type: DecisionType; finding_codes: string[]; policy_version: string };
}

export interface BacktestSample {
  tenant_id: string;
  task_id: string;
  event_id: string;
}

export interface BacktestCell {
  recorded: DecisionType;
  candidate: DecisionType;
  count: number;
  /** Of all events replayed. */
  rate: number;
  samples: BacktestSample[];
}

export interface BacktestReport {
  events: number;
  tasks: number;
  /** Events whose candidate decision differs from the recorded one. */
  changed: number;
  /** Every non-empty (recorded → candidate) pair, the unchanged diagonal included, largest first. */
  matrix: BacktestCell[];
  /** Finding codes the candidate raises that were not recorded, and the reverse: events per code. */
  findings_gained: Record<string, number>;
  findings_lost: Record<string, number>;
  /** Tasks the candidate blocks at an earlier event than recorded (or at all), and at a later one (or never). */
  tasks_blocked_earlier: BacktestSample[];
  tasks_blocked_later: BacktestSample[];
  tasks_blocked_earlier_count: number;
  tasks_blocked_later_count: number;
}

export interface BacktestOptions {
  /** Sample events kept per matrix cell and tasks per list. @defaultValue `5` */
  samplesPerCell?: number;
}

/** Accumulates a backtest task by task; keeps counts and samples only, so memory does not grow with events. */
export class Backtest {
  private readonly cells = new Map<string, BacktestCell>();
  private readonly gained = new Map<string, number>();
  private readonly lost = new Map<string, number>();
  private readonly earlier: BacktestSample[] = [];
  private readonly later: BacktestSample[] = [];
  private earlierCount = 0;
  private laterCount = 0;
  private events = 0;
  private tasks = 0;
  private readonly samples: number;

  constructor(
    private readonly candidate: SupervisorPolicyFile,
    private readonly registry: PolicyRegistry,
    options: BacktestOptions = {},
  ) {
    this.samples = options.samplesPerCell ?? 5;
  }

  /** Replays one task's archived events, given in inbox order, through the candidate. */
  addTask(events: readonly ArchivedEvent[]): void {
    const first = events[0];
    if (!first) return;
    this.tasks++;
    const key = taskStateKey(first.event);
    const state: DecisionState = {
      tasks: new Map([
        [
          key,
          {
            status: first.task.status ?? undefined,
            metadata: structuredClone(first.task.metadata),
            retry_count: first.task.retry_count,
          },
        ],
      ]),
      holders: new Map(),
    };
    let recordedBlockAt = -1;
    let candidateBlockAt = -1;
    events.forEach((archived, index) => {
      // Other tasks are not replayed: the resource holders are the ones recorded for this event.
      state.holders.set(
        archived.event.tenant_id,
        archived.running_tasks.filter((holder) => holder.task_id !== archived.event.task_id),
      );
      const [plan] = decideInOrder([archived.event], state, this.candidate, this.registry);
      const candidate = plan!.decision;
      this.count(
        archived,
        candidate.decision_type,
        candidate.findings.map((f) => f.code),
      );
      if (recordedBlockAt < 0 && archived.recorded.decision_type === 'BLOCK') recordedBlockAt = index;
      if (candidateBlockAt < 0 && candidate.decision_type === 'BLOCK') candidateBlockAt = index;
    });
    const sample = {
      tenant_id: first.event.tenant_id,
      task_id: first.event.task_id,
      event_id: first.event.event_id,
    };
    const never = Number.POSITIVE_INFINITY;
    const recordedAt = recordedBlockAt < 0 ? never : recordedBlockAt;
    const candidateAt = candidateBlockAt < 0 ? never : candidateBlockAt;
    if (candidateAt < recordedAt) {
      this.earlierCount++;
      if (this.earlier.length < this.samples) this.earlier.push(sample);
    } else if (candidateAt > recordedAt) {
      this.laterCount++;
      if (this.later.length < this.samples) this.later.push(sample);
    }
  }

  private count(archived: ArchivedEvent, candidate: DecisionType, codes: string[]): void {
    this.events++;
    const recorded = archived.recorded.decision_type;
    const cellKey = `${recorded}>${candidate}`;
    let cell = this.cells.get(cellKey);
    if (!cell) {
      cell = { recorded, candidate, count: 0, rate: 0, samples: [] };
      this.cells.set(cellKey, cell);
    }
    cell.count++;
    if (cell.samples.length < this.samples)
      cell.samples.push({
        tenant_id: archived.event.tenant_id,
        task_id: archived.event.task_id,
        event_id: archived.event.event_id,
      });
    const before = new Set(archived.recorded.finding_codes);
    const after = new Set(codes);
    for (const code of after) if (!before.has(code)) this.gained.set(code, (this.gained.get(code) ?? 0) + 1);
    for (const code of before) if (!after.has(code)) this.lost.set(code, (this.lost.get(code) ?? 0) + 1);
  }

  report(): BacktestReport {
    const matrix = [...this.cells.values()]
      .map((cell) => ({ ...cell, rate: this.events === 0 ? 0 : cell.count / this.events }))
      .sort(
        (a, b) =>
          b.count - a.count || a.recorded.localeCompare(b.recorded) || a.candidate.localeCompare(b.candidate),
      );
    const sorted = (counts: Map<string, number>) =>
      Object.fromEntries([...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
    return {
      events: this.events,
      tasks: this.tasks,
      changed: matrix.filter((c) => c.recorded !== c.candidate).reduce((sum, c) => sum + c.count, 0),
      matrix,
      findings_gained: sorted(this.gained),
      findings_lost: sorted(this.lost),
      tasks_blocked_earlier: this.earlier,
      tasks_blocked_later: this.later,
      tasks_blocked_earlier_count: this.earlierCount,
      tasks_blocked_later_count: this.laterCount,
    };
  }
}

/** A `--fail-on` rule: `ALLOW->BLOCK>0.5%` (a share of all replayed events) or `ALLOW->BLOCK>10` (a count). */
export interface BacktestFailRule {
  text: string;
  recorded: DecisionType;
  candidate: DecisionType;
  /** A fraction (0.005 for 0.5 %) when `percent`, else a count. */
  threshold: number;
  percent: boolean;
}

const DECISION_TYPES: readonly string[] = DecisionTypeSchema.options;
const RULE = /^\s*([A-Z_]+)\s*->\s*([A-Z_]+)\s*>\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/;

/** Parses a fail-on rule; a bad one is a ValidationError naming `path` and the expected form. */
export function parseBacktestFailRule(text: string, path = '--fail-on'): BacktestFailRule {
  const match = RULE.exec(text);
  const known = (value: string): value is DecisionType => DECISION_TYPES.includes(value);
  if (!match || !known(match[1]!) || !known(match[2]!)) {
    const message = `must look like "ALLOW->BLOCK>0.5%" or "ALLOW->BLOCK>10" with decisions among ${DECISION_TYPES.join(', ')}; got ${JSON.stringify(text)}`;
    throw new ValidationError(`invalid ${path}: ${message}`, [{ path, message }]);
  }
  const percent = match[4] === '%';
  const value = Number(match[3]);
  return {
    text: text.trim(),
    recorded: match[1],
    candidate: match[2],
    threshold: percent ? value / 100 : value,
    percent,
  };
}

/** The rules the report breaks, each with what it measured. */
export function brokenBacktestRules(
  report: BacktestReport,
  rules: readonly BacktestFailRule[],
): Array<{ rule: string; measured: string }> {
  return rules.flatMap((rule) => {
    const cell = report.matrix.find((c) => c.recorded === rule.recorded && c.candidate === rule.candidate);
    const count = cell?.count ?? 0;
    const measured = rule.percent ? (report.events === 0 ? 0 : count / report.events) : count;
    if (measured <= rule.threshold) return [];
    return [
      {
        rule: rule.text,
        measured: rule.percent
          ? `${(measured * 100).toFixed(3)}% (${count} of ${report.events})`
          : `${count}`,
      },
    ];
  });
}
