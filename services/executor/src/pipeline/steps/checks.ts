/**
 * Steps `verifying` and `health_checking`: the verifications the plan names — commands of the WriteGate policy,
 * never the agent's, run in the sandbox (src/sandbox/) — then its health checks (a named verification again, or
 * HTTP through a circuit breaker per origin). Each step runs
 * its checks in order and stops at the first failure; a failed step is recorded and the execution rolls back.
 * A new kind of check is one more entry in `CHECK_STEPS`.
 */
import type { ChangeSetStepRecord } from '@warden/db';
import {
  checkForResult,
  totalCheckDuration,
  type ChangePlan,
  type ChangeSetStatus,
  type CheckOutcome,
} from '@warden/domain';
import { describeCommandResult } from '../../command-runner.js';
import type { Attempt, Failure, Pipeline } from '../context.js';

interface CheckStep {
  step: 'verifying' | 'health_checking';
  /** The change set's error code when a check fails. */
  failureCode: string;
  /** How messages name a check (`verification "npm test" failed`), count them, and say there are none. */
  singular: string;
  counted: string;
  none: string;
  /** The audit event when every check passed (or there were none), and when one failed. */
  passedEvent: string;
  failedEvent: string;
  /** Where the change set goes when the step passes. @defaultValue it stays (the commit moves it on) */
  next?: ChangeSetStatus;
  /** One thunk per check of the plan, run in order. */
  checks(pipeline: Pipeline, at: Attempt, plan: ChangePlan): Array<() => Promise<CheckOutcome>>;
}

const CHECK_STEPS: readonly CheckStep[] = [
  {
    step: 'verifying',
    failureCode: 'verification_failed',
    singular: 'verification',
    counted: 'verification command(s)',
    none: 'no verification commands in the plan',
    passedEvent: 'CHANGESET_VERIFIED',
    failedEvent: 'CHANGESET_VERIFICATION_FAILED',
    next: 'health_checking',
    checks: (pipeline, at, plan) =>
      (plan.verification_plan?.verifications ?? []).map((name) => async () => {
        const started = performance.now();
        const run = await runVerification(pipeline, at, name);
        return {
          name,
          kind: 'verification',
          ok: run.ok,
          duration_ms: Math.round(performance.now() - started),
          detail: run.detail,
          ...(run.output === undefined ? {} : { output: run.output }),
        };
      }),
  },
  {
    step: 'health_checking',
    failureCode: 'health_check_failed',
    singular: 'health check',
    counted: 'health check(s)',
    none: 'no health checks in the plan',
    passedEvent: 'CHANGESET_HEALTH_CHECKED',
    failedEvent: 'CHANGESET_HEALTH_CHECK_FAILED',
    checks: (pipeline, at, plan) =>
      plan.health_checks.map(
        (check) => () =>
          pipeline.options.healthChecker.run(check, {
            runVerification: (name) => runVerification(pipeline, at, name),
          }),
      ),
  },
];

/**
 * Runs every check step in order; the checks that ran, and the failure to roll back for when one failed.
 *
 * A step with no checks in the plan runs nothing, so it is not worth a transaction of its own: its `skipped` row
 * (and the status it moves to) goes with the next write — recorded before the next step that runs checks starts
 * them, so the status shown while a check runs is its own, or, returned as `unrecorded`, with the commit.
 */
export async function runChecks(
  pipeline: Pipeline,
  at: Attempt,
  plan: ChangePlan,
): Promise<{ checks: CheckOutcome[]; failure?: Failure; unrecorded: ChangeSetStepRecord[] }> {
  const checks: CheckOutcome[] = [];
  let unrecorded: ChangeSetStepRecord[] = [];
  let movedTo: ChangeSetStatus | undefined;
  for (const step of CHECK_STEPS) {
    const thunks = step.checks(pipeline, at, plan);
    if (thunks.length === 0) {
      unrecorded.push(stepEntry(pipeline, at, step, 0, []));
      movedTo = step.next ?? movedTo;
      continue;
    }
    if (unrecorded.length > 0) {
      const { recorder } = pipeline;
      if (movedTo) await recorder.advance(at, { patch: { status: movedTo }, steps: unrecorded });
      else await recorder.record(unrecorded);
      unrecorded = [];
      movedTo = undefined;
    }
    const outcomes = await runCheckStep(pipeline, at, step, thunks);
    checks.push(...outcomes);
    const failed = outcomes.find((c) => !c.ok);
    if (failed)
      return {
        checks,
        failure: {
          step: step.step,
          code: step.failureCode,
          message: `${step.singular} "${failed.name}" failed: ${failed.detail}`,
          checks,
        },
        unrecorded: [],
      };
  }
  return { checks, unrecorded };
}

async function runCheckStep(
  { recorder }: Pipeline,
  at: Attempt,
  step: CheckStep,
  checks: ReadonlyArray<() => Promise<CheckOutcome>>,
): Promise<CheckOutcome[]> {
  const outcomes: CheckOutcome[] = [];
  for (const check of checks) {
    const outcome = await check();
    outcomes.push(outcome);
    if (!outcome.ok) break;
  }
  const ok = outcomes.every((o) => o.ok);
  const entry = stepEntry({ recorder }, at, step, checks.length, outcomes);
  if (ok && step.next) await recorder.advance(at, { patch: { status: step.next }, steps: [entry] });
  else await recorder.record([entry]);
  return outcomes;
}

/** The row of a check step: skipped (no checks), ok, or failed at its last outcome. */
function stepEntry(
  { recorder }: Pick<Pipeline, 'recorder'>,
  at: Attempt,
  step: CheckStep,
  planned: number,
  outcomes: readonly CheckOutcome[],
): ChangeSetStepRecord {
  const ok = outcomes.every((o) => o.ok);
  const last = outcomes.at(-1);
  const message =
    planned === 0
      ? step.none
      : ok
        ? `${outcomes.length} ${step.counted} passed`
        : `${step.singular} failed: ${last!.name} (${last!.detail})`;
  return recorder.entry(at, {
    step: step.step,
    status: planned === 0 ? 'skipped' : ok ? 'ok' : 'failed',
    message,
    detail: { checks: outcomes.map(checkForResult) },
    event: ok ? step.passedEvent : step.failedEvent,
    durationMs: totalCheckDuration(outcomes),
  });
}

/**
 * Runs the policy's verification `name` in the sandbox. A name the policy does not declare cannot get here past
 * the WriteGate re-check; it still fails closed rather than running anything.
 */
async function runVerification(
  { options }: Pipeline,
  at: Attempt,
  name: string,
): Promise<{ ok: boolean; detail: string; output?: string }> {
  const verifications = at.policy.policy.verifications;
  const verification = Object.hasOwn(verifications, name) ? verifications[name] : undefined;
  if (!verification) return { ok: false, detail: 'not declared in the WriteGate policy; nothing was run' };
  const { sandbox } = options;
  const result = await sandbox.run(verification, {
    changesetId: at.key.changeset_id,
    workspaceName: at.workspace.name,
    workspaceRoot: at.workspace.root,
  });
  const degraded = sandbox.capabilities.degraded.length > 0 ? ` [sandbox ${sandbox.describe()}]` : '';
  return {
    ok: result.ok,
    detail: `${describeCommandResult(result, result.timeoutMs)}${degraded}`,
    output: result.output,
  };
}
