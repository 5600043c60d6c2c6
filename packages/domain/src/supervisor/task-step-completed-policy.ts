import { severityAtLeast } from '../decisions.js';
import {
  actions,
  asRecord,
  asStringArray,
  finding,
  summarizeFindings,
  type FindingDraft,
  type Policy,
  type PolicyOutcome,
} from './policy.js';

// Run modes from least to most autonomy: a step may not run with more autonomy than its task allows.
const RUN_MODE_RANK: Record<string, number> = { manual: 0, assisted: 1, supervised: 2, autonomous: 3 };

/**
 * TASK_STEP_COMPLETED: risk re-evaluation after each step. Indicators over their thresholds are MEDIUM,
 * warnings LOW, a step beyond the task's run mode or capabilities HIGH. HIGH+ or two MEDIUM → PAUSE.
 */
export const taskStepCompletedPolicy: Policy = {
  name: 'task_step_risk',
  version: '1',
  evaluate({ event, task, config }): PolicyOutcome {
    const { payload } = event;
    const { thresholds } = config;
    const findings: FindingDraft[] = [];
    const indicators = asRecord(payload.risk_indicators) ?? {};
    const number = (key: string) =>
      typeof indicators[key] === 'number' ? (indicators[key] as number) : undefined;

    const errorRate = number('error_rate');
    if (errorRate !== undefined && errorRate > thresholds.error_rate) {
      findings.push(
        finding(
          'RISK_ERROR_RATE',
          'RISK',
          'MEDIUM',
          `error rate ${errorRate} is above ${thresholds.error_rate}`,
          [{ error_rate: errorRate, threshold: thresholds.error_rate }],
        ),
      );
    }
    const usage = number('resource_usage');
    if (usage !== undefined && usage > thresholds.resource_usage) {
      findings.push(
        finding(
          'RISK_RESOURCE_USAGE',
          'RISK',
          'MEDIUM',
          `resource usage ${usage} is above ${thresholds.resource_usage}`,
          [{ resource_usage: usage, threshold: thresholds.resource_usage }],
        ),
      );
    }
    const security = number('security_score');
    if (security !== undefined && security < thresholds.security_score) {
      findings.push(
        finding(
          'RISK_SECURITY_SCORE',
          'RISK',
          'MEDIUM',
          `security score ${security} is below ${thresholds.security_score}`,
          [{ security_score: security, threshold: thresholds.security_score }],
        ),
      );
    }
    const rawWarnings = asRecord(payload.result)?.warnings;
    // Warnings come as strings or as objects ({ code, message }); any non-empty list counts.
    const warnings = Array.isArray(rawWarnings) ? rawWarnings : [];
    if (warnings.length > 0) {
      findings.push(
        finding(
          'RISK_STEP_WARNINGS',
          'RISK',
          'LOW',
          `step reported ${warnings.length} warning(s)`,
          warnings.slice(0, 5),
        ),
      );
    }

    const step = asRecord(payload.step) ?? {};
    const stepMode =
      typeof step.mode === 'string'
        ? step.mode.toLowerCase()
        : typeof payload.mode === 'string'
          ? payload.mode.toLowerCase()
          : undefined;
    const taskMode =
      typeof task.metadata.run_mode === 'string' ? task.metadata.run_mode.toLowerCase() : undefined;
    const taskRank = taskMode === undefined ? undefined : RUN_MODE_RANK[taskMode];
    // A step mode we do not know is treated as the most autonomous: unknown must not mean allowed.
    const stepRank =
      stepMode === undefined
        ? undefined
        : Object.hasOwn(RUN_MODE_RANK, stepMode)
          ? RUN_MODE_RANK[stepMode]!
          : Number.POSITIVE_INFINITY;
    if (stepRank !== undefined && taskRank !== undefined && stepRank > taskRank) {
      findings.push(
        finding(
          'CONSTRAINT_RUN_MODE_EXCEEDED',
          'CONSTRAINT',
          'HIGH',
          `a ${stepMode} step in a ${taskMode} task`,
          [{ step_mode: stepMode, task_mode: taskMode }],
        ),
      );
    }
    const tool =
      typeof step.tool === 'string' ? step.tool : typeof payload.tool === 'string' ? payload.tool : undefined;
    const capabilities = Array.isArray(task.metadata.capabilities)
      ? asStringArray(task.metadata.capabilities)
      : undefined;
    if (tool && capabilities && !capabilities.includes(tool)) {
      findings.push(
        finding(
          'CONSTRAINT_UNDECLARED_TOOL',
          'CONSTRAINT',
          'HIGH',
          `tool "${tool}" is not among the declared capabilities`,
          [{ tool, capabilities }],
        ),
      );
    }

    const high = findings.some((f) => severityAtLeast(f.severity, 'HIGH'));
    const mediums = findings.filter((f) => f.severity === 'MEDIUM').length;
    if (high || mediums >= 2) {
      const reason = `paused after step: ${summarizeFindings(findings)}`;
      return {
        decision_type: 'PAUSE',
        reason,
        findings,
        actions: [actions.pauseGate(reason), actions.writeAudit()],
        task: { status: 'paused' },
      };
    }
    const reason =
      findings.length > 0
        ? `step allowed with findings: ${summarizeFindings(findings)}`
        : 'step within limits';
    return {
      decision_type: 'ALLOW',
      reason,
      findings,
      actions: [actions.noop(), actions.writeAudit()],
      task: { status: 'running' },
    };
  },
};
