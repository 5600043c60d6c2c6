import { severityAtLeast } from '../decisions.js';
import { matchesAnyGlob } from '../glob.js';
import {
  actions,
  asRecord,
  asStringArray,
  finding,
  summarizeFindings,
  type FindingDraft,
  type Policy,
  type PolicyInput,
  type PolicyOutcome,
} from './policy.js';
import { compileRedlineRules } from './redline-rules.js';
import { judgeCommands } from './shell/judge-commands.js';
import { parseCommandSpec, type FailClosedCode } from './shell/parse-command-spec.js';

/**
 * The checkpoint of a fail-closed review: decide.ts's `REVIEW_CHECKPOINT`, not imported from there because
 * decide.ts imports the policy registry, which imports this policy (an import cycle). A test keeps them equal.
 */
const REVIEW_CHECKPOINT = 'supervisor_review';

const DESTRUCTIVE_RULE_ACTIONS = /\b(delete|drop|truncate|destroy|shutdown|wipe|purge)\b/i;

/** Findings that say the command could not be judged: never ALLOW on them, send the task to a human. */
export const FAIL_CLOSED_CODES: readonly FailClosedCode[] = [
  'REDLINE_UNREADABLE_COMMAND',
  'REDLINE_DYNAMIC_COMMAND',
  'REDLINE_UNKNOWN_SPEC_SHAPE',
];

/** Resolves `.` and `..` lexically (`/tmp/../etc/shadow` → `/etc/shadow`), keeping a leading `/`. */
export function normalizePath(path: string): string {
  const absolute = path.startsWith('/');
  const out: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (out.length > 0 && out.at(-1) !== '..') out.pop();
      else if (!absolute) out.push('..');
    } else {
      out.push(segment);
    }
  }
  return (absolute ? '/' : '') + out.join('/');
}

/**
 * A path is forbidden when, with `..` resolved, it matches a glob — or is the very directory a `dir/**` glob
 * protects (`rm -rf /etc` must not slip past `/etc/**`), hence the second try with a trailing slash.
 */
function isForbiddenPath(path: string, globs: readonly string[]): boolean {
  const normalized = normalizePath(path);
  return matchesAnyGlob(normalized, globs) || matchesAnyGlob(`${normalized}/`, globs);
}

function redlineFindings(input: PolicyInput): FindingDraft[] {
  const { payload } = input.event;
  const { redlines } = input.config;
  const findings: FindingDraft[] = [];
  const specs = {
    agent_spec: asRecord(payload.agent_spec),
    command_spec: asRecord(payload.command_spec),
    rule_spec: asRecord(payload.rule_spec),
  };

  for (const [name, spec] of Object.entries(specs)) {
    if (!spec) continue;
    const required = redlines.required_fields[name as keyof typeof specs];
    const missing = required.filter(
      (field) => spec[field] === undefined || spec[field] === null || spec[field] === '',
    );
    if (missing.length > 0) {
      findings.push(
        finding(
          'REDLINE_MISSING_REQUIRED_FIELD',
          'REDLINE',
          'HIGH',
          `${name} is missing ${missing.join(', ')}`,
          [{ spec: name, missing }],
        ),
      );
    }
  }

  // Every shape of command_spec is read — an object, a plain shell line, anything else — never only the
  // object form: a spec the reader cannot judge fails closed rather than being skipped.
  if (Object.hasOwn(payload, 'command_spec')) {
    const capabilities = asStringArray(specs.agent_spec?.capabilities);
    findings.push(
      ...judgeCommands(
        parseCommandSpec(payload.command_spec ?? null),
        compileRedlineRules(redlines),
        capabilities,
      ),
    );
  }

  const declaredPaths = asStringArray(payload.paths);
  const forbiddenDeclared = declaredPaths.filter((path) => isForbiddenPath(path, redlines.forbidden_paths));
  if (forbiddenDeclared.length > 0) {
    findings.push(
      finding(
        'REDLINE_FORBIDDEN_PATH',
        'REDLINE',
        'HIGH',
        `task declares forbidden paths: ${forbiddenDeclared.join(', ')}`,
        [{ paths: forbiddenDeclared }],
      ),
    );
  }

  if (
    specs.rule_spec &&
    typeof specs.rule_spec.action === 'string' &&
    DESTRUCTIVE_RULE_ACTIONS.test(specs.rule_spec.action)
  ) {
    findings.push(
      finding(
        'RISK_DESTRUCTIVE_RULE_ACTION',
        'RISK',
        'MEDIUM',
        `rule "${String(specs.rule_spec.name ?? '')}" takes a destructive action: ${specs.rule_spec.action}`,
        [{ action: specs.rule_spec.action }],
      ),
    );
  }
  return findings;
}

function conflictFindings(input: PolicyInput): FindingDraft[] {
  const wanted = new Set(asStringArray(input.event.payload.exclusive_resources));
  if (wanted.size === 0) return [];
  const findings: FindingDraft[] = [];
  for (const other of input.runningTasks) {
    if (other.task_id === input.event.task_id) continue;
    const shared = other.resources.filter((resource) => wanted.has(resource));
    if (shared.length > 0) {
      findings.push(
        finding(
          'CONFLICT_EXCLUSIVE_RESOURCE',
          'CONFLICT',
          'HIGH',
          `running task ${other.task_id} holds ${shared.join(', ')}`,
          [{ task_id: other.task_id, resources: shared }],
        ),
      );
    }
  }
  return findings;
}

/**
 * The task metadata key TASK_CREATED's pre-flight sets to its event id. A task is created on first sight of any
 * event, but only one that went through pre-flight was declared: guarded actions need it (ACTION_UNKNOWN_TASK).
 */
export const DECLARED_BY_EVENT = 'declared_by_event';

/** Whether TASK_CREATED's pre-flight judged this task (see {@link DECLARED_BY_EVENT}). */
export function wasDeclared(metadata: Record<string, unknown>): boolean {
  return typeof metadata[DECLARED_BY_EVENT] === 'string';
}

/** What a new task declares, kept on the task so later events are judged against it. */
function declaredMetadata(input: PolicyInput): Record<string, unknown> {
  const { payload } = input.event;
  const agent = asRecord(payload.agent_spec);
  const metadata: Record<string, unknown> = { ...asRecord(payload.metadata) };
  if (typeof payload.run_mode === 'string') metadata.run_mode = payload.run_mode;
  if (agent?.capabilities !== undefined) metadata.capabilities = asStringArray(agent.capabilities);
  if (payload.exclusive_resources !== undefined)
    metadata.exclusive_resources = asStringArray(payload.exclusive_resources);
  if (typeof payload.max_retries === 'number') metadata.max_retries = payload.max_retries;
  for (const key of ['agent_spec', 'command_spec', 'rule_spec'] as const)
    if (payload[key] !== undefined) metadata[key] = payload[key];
  return metadata;
}

/**
 * TASK_CREATED: pre-flight of the declared specs. Redlines (forbidden commands and paths, missing fields,
 * undeclared network or file-write capabilities) and conflicts over exclusive resources are HIGH → BLOCK;
 * a command that cannot be judged (unreadable, dynamic, of unknown shape) → REQUIRE_REVIEW at
 * `supervisor_review`; lesser findings → PAUSE at `open_plan`; nothing → ALLOW (the task moves to `verifying`).
 */
export const taskCreatedPolicy: Policy = {
  name: 'task_created_preflight',
  version: '2',
  evaluate(input: PolicyInput): PolicyOutcome {
    const findings = [...redlineFindings(input), ...conflictFindings(input)];
    // Stamped last, so no declared field can forge it: only this pre-flight makes a task one that may act.
    const metadata = {
      ...input.task.metadata,
      ...declaredMetadata(input),
      [DECLARED_BY_EVENT]: input.event.event_id,
    };
    if (findings.some((f) => severityAtLeast(f.severity, 'HIGH'))) {
      const reason = `blocked at pre-flight: ${summarizeFindings(findings)}`;
      return {
        decision_type: 'BLOCK',
        reason,
        findings,
        actions: [actions.markBlocked(reason), actions.writeAudit()],
        task: { status: 'blocked', metadata },
      };
    }
    if (findings.some((f) => (FAIL_CLOSED_CODES as readonly string[]).includes(f.code))) {
      const reason = `review required at pre-flight, the command could not be judged: ${summarizeFindings(findings)}`;
      return {
        decision_type: 'REQUIRE_REVIEW',
        reason,
        findings,
        actions: [actions.pauseGate(reason, REVIEW_CHECKPOINT), actions.writeAudit()],
        task: { status: 'paused', metadata },
      };
    }
    if (findings.length > 0) {
      const reason = `paused for review at pre-flight: ${summarizeFindings(findings)}`;
      return {
        decision_type: 'PAUSE',
        reason,
        findings,
        actions: [actions.pauseGate(reason), actions.writeAudit()],
        task: { status: 'paused', metadata },
      };
    }
    return {
      decision_type: 'ALLOW',
      reason: 'pre-flight passed',
      findings,
      actions: [actions.markVerifying(), actions.writeAudit()],
      task: { status: 'verifying', metadata },
    };
  },
};
