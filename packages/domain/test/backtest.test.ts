import { describe, expect, it } from 'vitest';
import {
  Backtest,
  brokenBacktestRules,
  builtInPolicies,
  parseBacktestFailRule,
  SupervisorPolicyFileSchema,
  ValidationError,
  type ArchivedEvent,
} from '../src/index.js';

const strict = SupervisorPolicyFileSchema.parse({});
const noEcho = SupervisorPolicyFileSchema.parse({
  redlines: { forbidden_commands: [{ description: 'no echo', programs: ['echo'] }] },
});

function created(taskId: string, command: string): ArchivedEvent {
  return {
    event: {
      event_id: `${taskId}-1`,
      tenant_id: 't',
      task_id: taskId,
      event_type: 'TASK_CREATED',
      ts: '2026-01-01T00:00:00.000Z',
      source: 'queue',
      payload: { agent_spec: { name: 'a', capabilities: [] }, command_spec: { name: 'c', command } },
    },
    task: { status: null, metadata: {}, retry_count: 0 },
    running_tasks: [],
    recorded: { decision_type: 'ALLOW', finding_codes: [], policy_version: '2+1' },
  };
}

function stepOf(taskId: string): ArchivedEvent {
  return {
    ...created(taskId, 'x'),
    event: {
      ...created(taskId, 'x').event,
      event_id: `${taskId}-2`,
      event_type: 'TASK_STEP_COMPLETED',
      payload: {},
    },
    task: { status: 'verifying', metadata: {}, retry_count: 0 },
  };
}

describe('Backtest', () => {
  it('should count transitions, findings gained and tasks blocked earlier', () => {
    const backtest = new Backtest(noEcho, builtInPolicies(), { samplesPerCell: 1 });
    backtest.addTask([created('a', 'echo hi'), stepOf('a')]);
    backtest.addTask([created('b', 'ls')]);
    const report = backtest.report();
    expect(report.events).toBe(3);
    expect(report.tasks).toBe(2);
    const cell = (r: string, c: string) => report.matrix.find((m) => m.recorded === r && m.candidate === c);
    // The step after the block is decided against the blocked task the candidate left behind.
    expect(cell('ALLOW', 'BLOCK')).toMatchObject({ count: 2, samples: [{ event_id: 'a-1' }] });
    expect(cell('ALLOW', 'ALLOW')?.count).toBe(1);
    expect(report.changed).toBe(2);
    expect(report.findings_gained).toEqual({ REDLINE_FORBIDDEN_COMMAND: 1 });
    expect(report.tasks_blocked_earlier_count).toBe(1);
    expect(report.tasks_blocked_later_count).toBe(0);
  });

  it('should report a task recorded blocked that the candidate lets through as blocked later', () => {
    const backtest = new Backtest(strict, builtInPolicies());
    const recordedBlock = created('c', 'ls');
    recordedBlock.recorded = {
      decision_type: 'BLOCK',
      finding_codes: ['REDLINE_FORBIDDEN_COMMAND'],
      policy_version: 'x',
    };
    backtest.addTask([recordedBlock]);
    const report = backtest.report();
    expect(report.tasks_blocked_later_count).toBe(1);
    expect(report.findings_lost).toEqual({ REDLINE_FORBIDDEN_COMMAND: 1 });
  });
});

describe('fail-on rules', () => {
  it('should parse shares and counts and name a bad rule', () => {
    expect(parseBacktestFailRule('ALLOW->BLOCK>0.5%')).toMatchObject({ threshold: 0.005, percent: true });
    expect(parseBacktestFailRule(' PAUSE -> ALLOW > 10 ')).toMatchObject({
      recorded: 'PAUSE',
      threshold: 10,
    });
    for (const bad of ['ALLOW->NOPE>1', 'ALLOW>BLOCK>1', 'ALLOW->BLOCK', 'ALLOW->BLOCK>-1%', ''])
      expect(() => parseBacktestFailRule(bad)).toThrow(ValidationError);
  });

  it('should break a rule only above its threshold', () => {
    const backtest = new Backtest(noEcho, builtInPolicies());
    backtest.addTask([created('a', 'echo hi')]);
    backtest.addTask([created('b', 'ls')]);
    const report = backtest.report();
    expect(brokenBacktestRules(report, [parseBacktestFailRule('ALLOW->BLOCK>50%')])).toEqual([]);
    expect(brokenBacktestRules(report, [parseBacktestFailRule('ALLOW->BLOCK>49%')])).toEqual([
      { rule: 'ALLOW->BLOCK>49%', measured: '50.000% (1 of 2)' },
    ]);
    expect(brokenBacktestRules(report, [parseBacktestFailRule('ALLOW->BLOCK>0')])).toHaveLength(1);
  });
});
