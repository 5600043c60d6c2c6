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

// Shell words that reach the network or write files; a task must declare the capability to use them.
const NETWORK_WORDS = /(^|[\s;|&(])(curl|wget|ssh|scp|rsync|nc|ncat|telnet|ftp|git\s+(clone|push|pull|fetch))(\s|$)|https?:\/\//i;
const FILE_WRITE_WORDS = /(^|[\s;|&(])(rm|mv|cp|touch|mkdir|rmdir|tee|truncate|dd|chmod|chown|ln|sed\s+-i)(\s|$)|>>?(?!&)\s*(?!\/dev\/null\b)[^\s&|;]/;
const DESTRUCTIVE_RULE_ACTIONS = /\b(delete|drop|truncate|destroy|shutdown|wipe|purge)\b/i;

/**
 * `command` joined with `args`, whitespace collapsed: what the redline patterns read. `args` given as one
 * string is read as words rather than dropped, so a malformed spec cannot hide its arguments.
 */
export function commandLine(commandSpec: Record<string, unknown>): string {
  const args = typeof commandSpec.args === 'string' ? [commandSpec.args] : asStringArray(commandSpec.args);
  const parts = [typeof commandSpec.command === 'string' ? commandSpec.command : '', ...args];
  return parts.join(' ').replace(/\s+/g, ' ').trim();
}

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

/** Every word of a command line that could name a file: plain words, `key=value` values, redirect targets. */
function candidatePaths(line: string): string[] {
  const words = line.split(' ').flatMap((word) => {
    const cleaned = word.replace(/^\d*>>?/, '').replace(/^['"]|['"]$/g, '');
    const value = cleaned.includes('=') ? cleaned.slice(cleaned.indexOf('=') + 1) : cleaned;
    return value === '' || value.startsWith('-') ? [] : [value];
  });
  return [...new Set(words)];
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
  const specs = { agent_spec: asRecord(payload.agent_spec), command_spec: asRecord(payload.command_spec), rule_spec: asRecord(payload.rule_spec) };

  for (const [name, spec] of Object.entries(specs)) {
    if (!spec) continue;
    const required = redlines.required_fields[name as keyof typeof specs];
    const missing = required.filter((field) => spec[field] === undefined || spec[field] === null || spec[field] === '');
    if (missing.length > 0) {
      findings.push(finding('REDLINE_MISSING_REQUIRED_FIELD', 'REDLINE', 'HIGH', `${name} is missing ${missing.join(', ')}`, [{ spec: name, missing }]));
    }
  }

  const capabilities = asStringArray(specs.agent_spec?.capabilities).map((c) => c.toLowerCase());
  if (specs.command_spec) {
    const line = commandLine(specs.command_spec);
    for (const rule of redlines.forbidden_commands) {
      if (new RegExp(rule.pattern, 'i').test(line)) {
        findings.push(finding('REDLINE_FORBIDDEN_COMMAND', 'REDLINE', 'HIGH', `forbidden command: ${rule.description}`, [{ command_line: line, pattern: rule.pattern }]));
      }
    }
    const forbidden = candidatePaths(line.split(' ').slice(1).join(' ')).filter((path) => isForbiddenPath(path, redlines.forbidden_paths));
    if (forbidden.length > 0) {
      findings.push(finding('REDLINE_FORBIDDEN_PATH', 'REDLINE', 'HIGH', `command names forbidden paths: ${forbidden.join(', ')}`, [{ paths: forbidden }]));
    }
    if (NETWORK_WORDS.test(line) && !capabilities.includes('network')) {
      findings.push(finding('REDLINE_UNDECLARED_NETWORK', 'REDLINE', 'HIGH', 'command uses the network but the agent does not declare the "network" capability', [{ command_line: line }]));
    }
    if (FILE_WRITE_WORDS.test(line) && !capabilities.includes('file_write')) {
      findings.push(finding('REDLINE_UNDECLARED_FILE_WRITE', 'REDLINE', 'HIGH', 'command writes files but the agent does not declare the "file_write" capability', [{ command_line: line }]));
    }
  }

  const declaredPaths = asStringArray(payload.paths);
  const forbiddenDeclared = declaredPaths.filter((path) => isForbiddenPath(path, redlines.forbidden_paths));
  if (forbiddenDeclared.length > 0) {
    findings.push(finding('REDLINE_FORBIDDEN_PATH', 'REDLINE', 'HIGH', `task declares forbidden paths: ${forbiddenDeclared.join(', ')}`, [{ paths: forbiddenDeclared }]));
  }

  if (specs.rule_spec && typeof specs.rule_spec.action === 'string' && DESTRUCTIVE_RULE_ACTIONS.test(specs.rule_spec.action)) {
    findings.push(finding('RISK_DESTRUCTIVE_RULE_ACTION', 'RISK', 'MEDIUM', `rule "${String(specs.rule_spec.name ?? '')}" takes a destructive action: ${specs.rule_spec.action}`, [{ action: specs.rule_spec.action }]));
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
      findings.push(finding('CONFLICT_EXCLUSIVE_RESOURCE', 'CONFLICT', 'HIGH', `running task ${other.task_id} holds ${shared.join(', ')}`, [{ task_id: other.task_id, resources: shared }]));
    }
  }
  return findings;
}

/** What a new task declares, kept on the task so later events are judged against it. */
function declaredMetadata(input: PolicyInput): Record<string, unknown> {
  const { payload } = input.event;
  const agent = asRecord(payload.agent_spec);
  const metadata: Record<string, unknown> = { ...asRecord(payload.metadata) };
  if (typeof payload.run_mode === 'string') metadata.run_mode = payload.run_mode;
  if (agent?.capabilities !== undefined) metadata.capabilities = asStringArray(agent.capabilities);
  if (payload.exclusive_resources !== undefined) metadata.exclusive_resources = asStringArray(payload.exclusive_resources);
  if (typeof payload.max_retries === 'number') metadata.max_retries = payload.max_retries;
  for (const key of ['agent_spec', 'command_spec', 'rule_spec'] as const) if (payload[key] !== undefined) metadata[key] = payload[key];
  return metadata;
}

/**
 * TASK_CREATED: pre-flight of the declared specs. Redlines (forbidden commands and paths, missing fields,
 * undeclared network or file-write capabilities) and conflicts over exclusive resources are HIGH → BLOCK;
 * lesser findings → PAUSE at `open_plan`; nothing → ALLOW (the task moves to `verifying`).
 */
export const taskCreatedPolicy: Policy = {
  name: 'task_created_preflight',
  version: '1',
  evaluate(input: PolicyInput): PolicyOutcome {
    const findings = [...redlineFindings(input), ...conflictFindings(input)];
    const metadata = { ...input.task.metadata, ...declaredMetadata(input) };
    if (findings.some((f) => severityAtLeast(f.severity, 'HIGH'))) {
      const reason = `blocked at pre-flight: ${summarizeFindings(findings)}`;
      return { decision_type: 'BLOCK', reason, findings, actions: [actions.markBlocked(reason), actions.writeAudit()], task: { status: 'blocked', metadata } };
    }
    if (findings.length > 0) {
      const reason = `paused for review at pre-flight: ${summarizeFindings(findings)}`;
      return { decision_type: 'PAUSE', reason, findings, actions: [actions.pauseGate(reason), actions.writeAudit()], task: { status: 'paused', metadata } };
    }
    return { decision_type: 'ALLOW', reason: 'pre-flight passed', findings, actions: [actions.markVerifying(), actions.writeAudit()], task: { status: 'verifying', metadata } };
  },
};
