import { severityAtLeast } from '../decisions.js';
import {
  ActionProposedPayloadSchema,
  FORBIDDEN_ACTION_HOSTS,
  canonicalHost,
  hostMatches,
  type ActionProposal,
} from './action-proposal.js';
import {
  actions,
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
import { parseCommandSpec } from './shell/parse-command-spec.js';
import { normalizePathValue, pathValueMatchesGlob } from './shell/path-pattern.js';
import { FAIL_CLOSED_CODES, wasDeclared } from './task-created-policy.js';

/** decide.ts's `REVIEW_CHECKPOINT` (not imported: decide.ts imports the registry, which imports this file). */
const REVIEW_CHECKPOINT = 'supervisor_review';

/** Findings that mean the action could not be judged: a person decides, never ALLOW. */
const UNJUDGEABLE_CODES: readonly string[] = [
  ...FAIL_CLOSED_CODES,
  'ACTION_UNREADABLE',
  'ACTION_UNREADABLE_HOST',
];

/** A command in the forms the pre-flight reader takes: an argv becomes `{ command, args }`, `cwd` joins it. */
function commandSpecOf(action: ActionProposal): unknown {
  const { command, cwd } = action;
  if (Array.isArray(command)) {
    const [program, ...args] = command;
    return { command: program, args, ...(cwd ? { cwd } : {}) };
  }
  if (typeof command === 'string') return cwd ? { command, cwd } : command;
  return command;
}

function commandFindings(action: ActionProposal, input: PolicyInput, capabilities: string[]): FindingDraft[] {
  if (action.command === undefined) return [];
  return judgeCommands(
    parseCommandSpec(commandSpecOf(action)),
    compileRedlineRules(input.config.redlines),
    capabilities,
  );
}

function toolFindings(action: ActionProposal, capabilities: string[]): FindingDraft[] {
  if (action.tool === undefined || capabilities.includes(action.tool)) return [];
  return [
    finding(
      'CONSTRAINT_UNDECLARED_TOOL',
      'CONSTRAINT',
      'HIGH',
      `tool "${action.tool}" is not among the declared capabilities`,
      [{ tool: action.tool, capabilities }],
    ),
  ];
}

/**
 * Every spelling of a path is tried: as given and in its NFKC form (a fullwidth `／ｅｔｃ` is `/etc` to any
 * tool that normalizes), with `..`, `//`, `~` and the working directory resolved. A relative path that climbs
 * above where it starts, with no working directory to anchor it, could be anywhere: forbidden.
 */
function pathFindings(action: ActionProposal, input: PolicyInput, capabilities: string[]): FindingDraft[] {
  if (action.paths === undefined) return [];
  const findings: FindingDraft[] = [];
  const cwd = action.cwd ? normalizePathValue(action.cwd) : null;
  const forbidden: string[] = [];
  const escaping: string[] = [];
  for (const path of action.paths) {
    const spellings = [...new Set([path, path.normalize('NFKC')])].map((p) => normalizePathValue(p, cwd));
    if (spellings.some((p) => p === '..' || p.startsWith('../'))) escaping.push(path);
    else if (
      spellings.some((p) =>
        input.config.redlines.forbidden_paths.some((glob) => pathValueMatchesGlob(p, glob)),
      )
    )
      forbidden.push(path);
  }
  if (forbidden.length > 0)
    findings.push(
      finding(
        'REDLINE_FORBIDDEN_PATH',
        'REDLINE',
        'HIGH',
        `action writes forbidden paths: ${forbidden.join(', ')}`,
        [{ paths: forbidden }],
      ),
    );
  if (escaping.length > 0)
    findings.push(
      finding(
        'REDLINE_PATH_ESCAPES',
        'REDLINE',
        'HIGH',
        `action writes paths that climb out of their working directory: ${escaping.join(', ')}`,
        [{ paths: escaping, cwd }],
      ),
    );
  if (!capabilities.includes('file_write'))
    findings.push(
      finding(
        'REDLINE_UNDECLARED_FILE_WRITE',
        'REDLINE',
        'HIGH',
        'action writes files without the file_write capability',
        [{ paths: action.paths }],
      ),
    );
  return findings;
}

/**
 * Hosts are read as a connection would read them (see `canonicalHost`), then: never a metadata service; only
 * the task's `allowed_hosts` when it declared them; otherwise an IDNA (`xn--`) name, which can pass for another
 * on a screen, goes to a person.
 */
function hostFindings(action: ActionProposal, input: PolicyInput, capabilities: string[]): FindingDraft[] {
  if (action.hosts === undefined) return [];
  const findings: FindingDraft[] = [];
  const declared = input.task.metadata.allowed_hosts;
  const allowList = Array.isArray(declared) ? asStringArray(declared) : undefined;
  for (const raw of action.hosts) {
    const read = canonicalHost(raw);
    if ('problem' in read) {
      findings.push(
        finding(
          'ACTION_UNREADABLE_HOST',
          'REDLINE',
          'MEDIUM',
          `host ${JSON.stringify(raw)}: ${read.problem}`,
          [{ host: raw }],
        ),
      );
      continue;
    }
    const { host } = read;
    if (FORBIDDEN_ACTION_HOSTS.some((pattern) => hostMatches(host, pattern))) {
      findings.push(
        finding(
          'REDLINE_FORBIDDEN_HOST',
          'REDLINE',
          'CRITICAL',
          `${raw} reaches ${host}, a cloud metadata service`,
          [{ host: raw, reaches: host }],
        ),
      );
    } else if (allowList !== undefined) {
      if (!allowList.some((pattern) => hostMatches(host, pattern)))
        findings.push(
          finding(
            'REDLINE_HOST_NOT_ALLOWED',
            'REDLINE',
            'HIGH',
            `${raw} reaches ${host}, not among the task's allowed_hosts`,
            [{ host: raw, reaches: host, allowed_hosts: allowList }],
          ),
        );
    } else if (host.split('.').some((label) => label.startsWith('xn--'))) {
      findings.push(
        finding(
          'RISK_LOOKALIKE_HOST',
          'RISK',
          'MEDIUM',
          `${raw} is an internationalized name (${host}) that may pass for another`,
          [{ host: raw, reaches: host }],
        ),
      );
    }
  }
  if (!capabilities.includes('network'))
    findings.push(
      finding(
        'REDLINE_UNDECLARED_NETWORK',
        'REDLINE',
        'HIGH',
        'action reaches hosts without the network capability',
        [{ hosts: action.hosts }],
      ),
    );
  return findings;
}

/** The task is held still (paused, blocked, finished): decide.ts turns any ALLOW into PAUSE or BLOCK. */
function judgeAction(action: ActionProposal, input: PolicyInput): FindingDraft[] {
  const capabilities = asStringArray(input.task.metadata.capabilities);
  return [
    ...toolFindings(action, capabilities),
    ...commandFindings(action, input, capabilities),
    ...pathFindings(action, input, capabilities),
    ...hostFindings(action, input, capabilities),
  ];
}

/**
 * TASK_ACTION_PROPOSED: an agent asks before it acts. The action gets the pre-flight's judgement — parsed
 * redlines over its command, forbidden paths, the declared capabilities (`network`, `file_write`, the tool) —
 * plus its hosts, then the task's state: an unknown task gets BLOCK and is recorded blocked (declare it with
 * TASK_CREATED first); a
 * paused, blocked or finished task gets no new actions (decide.ts holds it). HIGH+ → BLOCK and the task is
 * blocked; unjudgeable (unreadable payload or command) → REQUIRE_REVIEW at `supervisor_review`; lesser
 * findings → PAUSE at `open_plan`; nothing → ALLOW, the task's status unchanged.
 */
export const taskActionProposedPolicy: Policy = {
  name: 'task_action_guard',
  version: '1',
  evaluate(input: PolicyInput): PolicyOutcome {
    // A task row exists after any first event (TASK_STEP_COMPLETED, an unknown type, …); only TASK_CREATED's
    // pre-flight declares one, and an agent must not skip it by opening with another event.
    if (input.task.status === undefined || !wasDeclared(input.task.metadata)) {
      const reason =
        input.task.status === undefined
          ? 'unknown task: an action needs a task declared with TASK_CREATED first'
          : 'undeclared task: it was never judged by TASK_CREATED pre-flight, so it may not act';
      return {
        decision_type: 'BLOCK',
        reason,
        findings: [
          finding('ACTION_UNKNOWN_TASK', 'CONSTRAINT', 'HIGH', reason, [{ task_id: input.event.task_id }]),
        ],
        // Blocked, not left as the `running` row first sight creates: a second action must not find a task
        // that was never declared free to act.
        actions: [actions.markBlocked(reason), actions.writeAudit()],
        task: { status: 'blocked' },
      };
    }
    const parsed = ActionProposedPayloadSchema.safeParse(input.event.payload);
    const findings: FindingDraft[] = parsed.success
      ? judgeAction(parsed.data.action, input)
      : [
          finding(
            'ACTION_UNREADABLE',
            'REDLINE',
            'MEDIUM',
            `payload is not { action: { tool, command, cwd, paths, hosts } }: ${parsed.error.issues
              .slice(0, 3)
              .map((issue) => `${issue.path.join('.') || '(payload)'}: ${issue.message}`)
              .join('; ')}`,
          ),
        ];
    if (findings.some((f) => severityAtLeast(f.severity, 'HIGH'))) {
      const reason = `action blocked: ${summarizeFindings(findings)}`;
      return {
        decision_type: 'BLOCK',
        reason,
        findings,
        actions: [actions.markBlocked(reason), actions.writeAudit()],
        task: { status: 'blocked' },
      };
    }
    if (findings.some((f) => UNJUDGEABLE_CODES.includes(f.code))) {
      const reason = `review required, the action could not be judged: ${summarizeFindings(findings)}`;
      return {
        decision_type: 'REQUIRE_REVIEW',
        reason,
        findings,
        actions: [actions.pauseGate(reason, REVIEW_CHECKPOINT), actions.writeAudit()],
        task: { status: 'paused' },
      };
    }
    if (findings.length > 0) {
      const reason = `action paused for review: ${summarizeFindings(findings)}`;
      return {
        decision_type: 'PAUSE',
        reason,
        findings,
        actions: [actions.pauseGate(reason), actions.writeAudit()],
        task: { status: 'paused' },
      };
    }
    return {
      decision_type: 'ALLOW',
      reason: 'action allowed',
      findings,
      actions: [actions.writeAudit()],
      task: {},
    };
  },
};
