/**
 * Unit tests that travel inside a supervisor policy file (`tests:`), run without a database like `opa test`:
 * each test is a short story of events about one task, each event with the decision it must get. A policy
 * change that would turn one of them is caught by `warden policy test -f FILE` before it ships.
 */
import type { DecisionType } from '../decisions.js';
import type { TaskEvent } from '../events.js';
import type { SupervisorPolicyFile } from '../policy-file.js';
import type { TaskStatus } from '../tasks.js';
import type { PolicyTest } from './policy-test-schema.js';
import { decideInOrder, taskStateKey, type DecisionState } from './decide-in-order.js';
import type { PolicyRegistry } from './policy-registry.js';

/** One event's result in a test run. */
export interface PolicyTestStepResult {
  event_type: string;
  expected: { decision: DecisionType; findings: string[]; absent_findings: string[]; status?: TaskStatus };
  actual: { decision: DecisionType; findings: string[]; status: TaskStatus | undefined; reason: string };
  /** What differs, one line each; empty when the event got what the test expects. */
  differences: string[];
}

export interface PolicyTestResult {
  name: string;
  passed: boolean;
  steps: PolicyTestStepResult[];
}

const TEST_TENANT = 'policy-test';
const TEST_TASK = 'policy-test-task';
/** A fixed clock: policies are pure, and a test must give the same result whenever it runs. */
const TEST_TIME = '2026-01-01T00:00:00.000Z';

/**
 * Runs every test of a policy file against `registry` (the built-in policies, in production) under the file's
 * own thresholds, redlines and enforcement modes. Pure: no database, no clock, no I/O.
 */
export function runPolicyTests(
  config: SupervisorPolicyFile,
  tests: readonly PolicyTest[],
  registry: PolicyRegistry,
): PolicyTestResult[] {
  return tests.map((test) => runPolicyTest(config, test, registry));
}

function runPolicyTest(
  config: SupervisorPolicyFile,
  test: PolicyTest,
  registry: PolicyRegistry,
): PolicyTestResult {
  const key = { tenant_id: TEST_TENANT, task_id: TEST_TASK };
  const state: DecisionState = {
    tasks: new Map([
      [
        taskStateKey(key),
        test.task
          ? { ...test.task, metadata: structuredClone(test.task.metadata) }
          : { status: undefined, metadata: {}, retry_count: 0 },
      ],
    ]),
    holders: new Map([
      [TEST_TENANT, test.other_tasks.map((t) => ({ task_id: t.task_id, resources: [...t.resources] }))],
    ]),
  };
  const steps = test.events.map((step, index): PolicyTestStepResult => {
    const event: TaskEvent = {
      ...key,
      event_id: `${test.name}#${index + 1}`,
      event_type: step.event_type,
      ts: TEST_TIME,
      source: 'http',
      payload: structuredClone(step.payload),
    };
    const [plan] = decideInOrder([event], state, config, registry);
    const decision = plan!.decision;
    const actual = {
      decision: decision.decision_type,
      findings: decision.findings.map((f) => f.code),
      status: state.tasks.get(taskStateKey(key))!.status,
      reason: decision.reason,
    };
    const expected = step.expect;
    return { event_type: step.event_type, expected, actual, differences: differencesOf(expected, actual) };
  });
  return { name: test.name, passed: steps.every((s) => s.differences.length === 0), steps };
}

function differencesOf(
  expected: PolicyTestStepResult['expected'],
  actual: PolicyTestStepResult['actual'],
): string[] {
  const differences: string[] = [];
  if (actual.decision !== expected.decision)
    differences.push(`decision: expected ${expected.decision}, got ${actual.decision} (${actual.reason})`);
  const missing = expected.findings.filter((code) => !actual.findings.includes(code));
  if (missing.length > 0)
    differences.push(
      `findings: expected ${missing.join(', ')}, got ${actual.findings.length > 0 ? actual.findings.join(', ') : 'none'}`,
    );
  const unwanted = expected.absent_findings.filter((code) => actual.findings.includes(code));
  if (unwanted.length > 0) differences.push(`findings: expected no ${unwanted.join(', ')}, got them`);
  if (expected.status !== undefined && actual.status !== expected.status)
    differences.push(`status: expected ${expected.status}, got ${actual.status ?? 'none'}`);
  return differences;
}
