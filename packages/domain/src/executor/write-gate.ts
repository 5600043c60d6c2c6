/**
 * The WriteGate (see docs/executor.md): decides whether a change set may be applied as it is, needs a person's approval, or
 * is denied. A pure function of the plan, the change set, the policy and — in the executor — what was found on
 * disk; the API runs it at submission and the executor again before writing (defence in depth).
 */
import { z } from 'zod';
import { matchesAnyGlob } from '../glob.js';
import { severityAtLeast } from '../decisions.js';
import { RiskLevelSchema, type ChangePlan, type ChangeSet, type RiskLevel } from './change-set.js';
import { caseFoldKey, checkPathSafety, displayPath, type PathFact } from './path-safety.js';
import type { WriteGatePolicy } from './writegate-policy.js';
import { countChangedLines } from './changed-lines.js';
import { supplyChainPaths } from './supply-chain.js';
import { unknownVerifications, verificationInputsTouched } from './verification-rules.js';

/** Bumped whenever the gate's logic changes; stored with every verdict. */
export const WRITEGATE_VERSION = '2';

export const GateVerdictSchema = z.enum(['ALLOW', 'NEED_APPROVAL', 'DENY']);
export type GateVerdict = z.infer<typeof GateVerdictSchema>;

/** The six steps, in the order they run. */
export const GATE_STEPS = [
  'path_safety',
  'forbidden_paths',
  'allowed_paths',
  'constraints',
  'risk',
  'gating',
] as const;
export const GateStepSchema = z.enum(GATE_STEPS);
export type GateStep = z.infer<typeof GateStepSchema>;

export const GateReasonSchema = z.object({
  step: GateStepSchema,
  /** `pass`: the step found nothing; `skipped`: not run because an earlier step denied. */
  outcome: z.enum(['pass', 'deny', 'escalate', 'need_approval', 'skipped']),
  /** Stable machine code, e.g. `PATH_TRAVERSAL`, `FORBIDDEN_PATH`, `RISK_SCHEMA_CHANGE`. */
  code: z.string(),
  message: z.string(),
  /** Paths the reason is about, quoted and escaped for display. */
  paths: z.array(z.string()).optional(),
  /** For escalations: the floor this reason puts on the risk. */
  risk: RiskLevelSchema.optional(),
});
export type GateReason = z.infer<typeof GateReasonSchema>;

export const WriteGateResultSchema = z.object({
  verdict: GateVerdictSchema,
  risk_effective: RiskLevelSchema,
  /** Every step's outcome, in order: what denied, escalated or asked for approval, and what passed. */
  reasons: z.array(GateReasonSchema),
  policy_hash: z.string(),
  /**
   * The `version` of the WriteGate policy that judged: the file's own, or a tenant's stored version labelled
   * `1@v3` (docs/executor.md, "Which policy judges"). Absent on verdicts stored before it was recorded.
   */
  policy_version: z.string().optional(),
  gate_version: z.string(),
  stats: z.object({ files: z.number().int(), changed_lines: z.number().int(), deletes: z.number().int() }),
});
export type WriteGateResult = z.infer<typeof WriteGateResultSchema>;

export interface WriteGateInput {
  plan: ChangePlan;
  changeset: Pick<ChangeSet, 'changes'>;
  policy: WriteGatePolicy;
  policyHash: string;
  /** Problems the executor found on disk, by change path (symlinks, special files). @defaultValue none */
  pathFacts?: ReadonlyMap<string, readonly PathFact[]>;
  /**
   * What each existing file holds now, as text, by change path (the executor reads it from disk): deletes and
   * updates are counted against it rather than against the agent's own `old_content`. @defaultValue none
   */
  currentContents?: ReadonlyMap<string, string>;
}

/** The floor supply-chain and tool-configuration files put on the risk; built in, see supply-chain.ts. */
const SUPPLY_CHAIN_FLOOR: RiskLevel = 'HIGH';

const RISK_ORDER: RiskLevel[] = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];
const maxRisk = (a: RiskLevel, b: RiskLevel): RiskLevel =>
  RISK_ORDER.indexOf(a) >= RISK_ORDER.indexOf(b) ? a : b;
const MAX_LISTED_PATHS = 20;
const listPaths = (paths: readonly string[]) => paths.slice(0, MAX_LISTED_PATHS).map(displayPath);
const summarize = (paths: readonly string[]) => {
  const shown = listPaths(paths).join(', ');
  return paths.length > MAX_LISTED_PATHS ? `${shown} and ${paths.length - MAX_LISTED_PATHS} more` : shown;
};

/**
 * Runs the six steps in order and returns the verdict with every step's reasons:
 * 1. path safety (lexical, plus `pathFacts` from disk) — any problem denies and stops here;
 * 2. forbidden paths → DENY, risk CRITICAL; 3. outside `allowed_paths` → DENY; 4. constraints (and
 *    verifications the policy does not declare) → DENY;
 * 5. risk escalation (source, deletes, large changes, schemas, supply-chain files, what a verification
 *    executes; never below the plan's own proposal);
 * 6. gating, unless denied: missing rollback or verification plan, no health checks from MEDIUM, `always_review`
 *    globs, supply-chain files, a change to what a verification executes, risk at or above the threshold →
 *    NEED_APPROVAL; else ALLOW.
 */
export function evaluateWriteGate(input: WriteGateInput): WriteGateResult {
  const { plan, policy } = input;
  const changes = input.changeset.changes;
  const reasons: GateReason[] = [];
  const paths = changes.map((c) => c.path);
  // Past both limits the exact count changes nothing, so each diff may stop at what is left of the budget:
  // the gate's work stays bounded however many large files a change set carries.
  const limit = Math.max(policy.constraints.max_patch_lines, policy.risk.large_change_lines) + 1;
  const countOf = (change: (typeof changes)[number], sum: number) => {
    const current = input.currentContents?.get(change.path);
    const left = Math.max(1, limit - sum);
    return countChangedLines(change, { limit: left, ...(current === undefined ? {} : { current }) });
  };
  const stats = {
    files: new Set(paths).size,
    changed_lines: changes.reduce((sum, c) => sum + countOf(c, sum), 0),
    deletes: changes.filter((c) => c.operation === 'delete').length,
  };
  const result = (verdict: GateVerdict, risk: RiskLevel): WriteGateResult => ({
    verdict,
    risk_effective: risk,
    reasons,
    policy_hash: input.policyHash,
    policy_version: policy.version,
    gate_version: WRITEGATE_VERSION,
    stats,
  });

  // 1. Path safety. A path that fails here cannot be matched meaningfully against any glob, so the gate stops.
  const unsafe = new Map<string, { code: string; message: string; paths: string[] }>();
  const flag = (code: string, message: string, path: string) => {
    const entry = unsafe.get(code) ?? { code, message, paths: [] };
    if (!entry.paths.includes(path)) entry.paths.push(path);
    unsafe.set(code, entry);
  };
  for (const path of paths) {
    for (const issue of checkPathSafety(path)) flag(issue.code, issue.message, path);
    for (const fact of input.pathFacts?.get(path) ?? []) flag(fact.code, fact.message, path);
  }
  const seen = new Map<string, string>();
  const seenExact = new Set<string>();
  for (const path of paths) {
    if (seenExact.has(path)) {
      flag('PATH_DUPLICATE', 'the same path appears more than once in the change set', path);
      continue;
    }
    seenExact.add(path);
    const key = caseFoldKey(path);
    const other = seen.get(key);
    if (other !== undefined)
      flag(
        'PATH_CASE_COLLISION',
        `differs from ${displayPath(other)} only by letter case or Unicode form`,
        path,
      );
    else seen.set(key, path);
  }
  if (unsafe.size > 0) {
    for (const entry of unsafe.values()) {
      reasons.push({
        step: 'path_safety',
        outcome: 'deny',
        code: entry.code,
        message: `${entry.message}: ${summarize(entry.paths)}`,
        paths: listPaths(entry.paths),
      });
    }
    for (const step of GATE_STEPS.slice(1))
      reasons.push({
        step,
        outcome: 'skipped',
        code: 'SKIPPED',
        message: 'not evaluated: path safety denied the change set',
      });
    return result('DENY', 'CRITICAL');
  }
  reasons.push({
    step: 'path_safety',
    outcome: 'pass',
    code: 'PATHS_SAFE',
    message: `${stats.files} path(s) are relative, normalized and inside the workspace`,
  });

  let risk: RiskLevel = plan.risk_level_proposed;
  let denied = false;

  // 2. Forbidden paths: case-insensitively, so `.ENV` and `.Git/config` are caught on any filesystem.
  const forbidden = paths.filter((p) => matchesAnyGlob(p, policy.forbidden_paths, { caseInsensitive: true }));
  if (forbidden.length > 0) {
    denied = true;
    reasons.push({
      step: 'forbidden_paths',
      outcome: 'deny',
      code: 'FORBIDDEN_PATH',
      message: `forbidden path(s): ${summarize(forbidden)}`,
      paths: listPaths(forbidden),
      risk: 'CRITICAL',
    });
  } else {
    reasons.push({
      step: 'forbidden_paths',
      outcome: 'pass',
      code: 'NO_FORBIDDEN_PATHS',
      message: 'no path matches a forbidden glob',
    });
  }

  // 3. Allowed paths.
  const outside = paths.filter((p) => !matchesAnyGlob(p, policy.allowed_paths));
  if (outside.length > 0) {
    denied = true;
    reasons.push({
      step: 'allowed_paths',
      outcome: 'deny',
      code: 'PATH_NOT_ALLOWED',
      message: `outside allowed_paths: ${summarize(outside)}`,
      paths: listPaths(outside),
    });
  } else {
    reasons.push({
      step: 'allowed_paths',
      outcome: 'pass',
      code: 'PATHS_ALLOWED',
      message: 'every path is under allowed_paths',
    });
  }

  // 4. Constraints.
  const { max_files_touched, max_patch_lines, max_file_bytes } = policy.constraints;
  const constraintReasons: GateReason[] = [];
  if (stats.files > max_files_touched) {
    constraintReasons.push({
      step: 'constraints',
      outcome: 'deny',
      code: 'TOO_MANY_FILES',
      message: `${stats.files} files touched; max_files_touched is ${max_files_touched}`,
    });
  }
  if (stats.changed_lines > max_patch_lines) {
    constraintReasons.push({
      step: 'constraints',
      outcome: 'deny',
      code: 'TOO_MANY_LINES',
      message: `${stats.changed_lines} changed lines; max_patch_lines is ${max_patch_lines}`,
    });
  }
  const large = changes
    .filter((c) => c.new_content !== undefined && utf8Length(c.new_content) > max_file_bytes)
    .map((c) => c.path);
  if (large.length > 0) {
    constraintReasons.push({
      step: 'constraints',
      outcome: 'deny',
      code: 'FILE_TOO_LARGE',
      message: `new content over max_file_bytes (${max_file_bytes}): ${summarize(large)}`,
      paths: listPaths(large),
    });
  }
  // Agents name verifications; a name the policy does not declare has nothing to run, and approval cannot fix that.
  const unknown = unknownVerifications(plan, policy);
  if (unknown.length > 0) {
    constraintReasons.push({
      step: 'constraints',
      outcome: 'deny',
      code: 'UNKNOWN_VERIFICATION',
      message: `verification(s) not declared in the policy: ${unknown.map((n) => JSON.stringify(n)).join(', ')}`,
    });
  }
  if (constraintReasons.length > 0) {
    denied = true;
    reasons.push(...constraintReasons);
  } else {
    reasons.push({
      step: 'constraints',
      outcome: 'pass',
      code: 'WITHIN_CONSTRAINTS',
      message: `${stats.files} file(s), ${stats.changed_lines} changed line(s): within limits`,
    });
  }

  // 5. Risk escalation: each rule raises a floor; the plan's own proposal is a floor too.
  const escalate = (code: string, floor: RiskLevel, message: string, matched?: string[]) => {
    reasons.push({
      step: 'risk',
      outcome: 'escalate',
      code,
      message,
      risk: floor,
      ...(matched ? { paths: listPaths(matched) } : {}),
    });
    risk = maxRisk(risk, floor);
  };
  if (forbidden.length > 0)
    escalate(
      'RISK_FORBIDDEN_PATH',
      'CRITICAL',
      `forbidden path(s) touched: ${summarize(forbidden)}`,
      forbidden,
    );
  const source = paths.filter((p) => matchesAnyGlob(p, policy.risk.source_paths));
  if (source.length > 0)
    escalate(
      'RISK_SOURCE_CODE',
      policy.risk.source_floor,
      `source code changes: ${summarize(source)}`,
      source,
    );
  if (stats.deletes > 0) {
    const deleted = changes.filter((c) => c.operation === 'delete').map((c) => c.path);
    escalate(
      'RISK_DELETE',
      policy.risk.delete_floor,
      `${stats.deletes} file(s) deleted: ${summarize(deleted)}`,
      deleted,
    );
  }
  if (stats.changed_lines > policy.risk.large_change_lines) {
    escalate(
      'RISK_LARGE_CHANGE',
      policy.risk.large_change_floor,
      `${stats.changed_lines} changed lines (over ${policy.risk.large_change_lines})`,
    );
  }
  const schema = paths.filter((p) => matchesAnyGlob(p, policy.risk.schema_paths, { caseInsensitive: true }));
  if (schema.length > 0)
    escalate(
      'RISK_SCHEMA_CHANGE',
      policy.risk.schema_floor,
      `database schema or migration changes: ${summarize(schema)}`,
      schema,
    );
  const supplyChain = supplyChainPaths(paths);
  if (supplyChain.length > 0)
    escalate(
      'RISK_SUPPLY_CHAIN',
      SUPPLY_CHAIN_FLOOR,
      `supply-chain or tool-configuration files (package manifests, lockfiles, registry config, CI, git repositories): ${summarize(supplyChain)}`,
      supplyChain,
    );
  const verificationInputs = verificationInputsTouched(paths, policy);
  if (verificationInputs.paths.length > 0)
    escalate(
      'RISK_VERIFICATION_INPUT',
      'HIGH',
      `changes what verification(s) ${verificationInputs.verifications.join(', ')} execute: ${summarize(verificationInputs.paths)}`,
      verificationInputs.paths,
    );
  if (!reasons.some((r) => r.step === 'risk')) {
    reasons.push({
      step: 'risk',
      outcome: 'pass',
      code: 'RISK_AS_PROPOSED',
      message: `no escalation; risk stays at the proposed ${plan.risk_level_proposed}`,
      risk: plan.risk_level_proposed,
    });
  }

  if (denied) {
    reasons.push({
      step: 'gating',
      outcome: 'skipped',
      code: 'SKIPPED',
      message: 'not evaluated: the change set is denied',
    });
    return result('DENY', risk);
  }

  // 6. Gating.
  const needs = (code: string, message: string, matched?: string[]) =>
    reasons.push({
      step: 'gating',
      outcome: 'need_approval',
      code,
      message,
      ...(matched ? { paths: listPaths(matched) } : {}),
    });
  if (policy.approval.require_rollback_plan && plan.rollback_plan.trim() === '')
    needs('MISSING_ROLLBACK_PLAN', 'the plan has no rollback_plan');
  const verification = plan.verification_plan;
  if (
    policy.approval.require_verification_plan &&
    (verification === undefined ||
      (verification.description.trim() === '' && verification.verifications.length === 0))
  ) {
    needs('MISSING_VERIFICATION_PLAN', 'the plan has no verification_plan');
  }
  if (severityAtLeast(risk, policy.approval.require_health_checks_from) && plan.health_checks.length === 0) {
    needs(
      'MISSING_HEALTH_CHECKS',
      `risk ${risk} needs health checks (from ${policy.approval.require_health_checks_from}) and the plan has none`,
    );
  }
  const reviewed = paths.filter((p) =>
    matchesAnyGlob(p, policy.approval.always_review, { caseInsensitive: true }),
  );
  if (reviewed.length > 0) needs('ALWAYS_REVIEW', `always reviewed: ${summarize(reviewed)}`, reviewed);
  // Whatever the risk threshold says: these run or fetch code on their own, so a person looks first.
  if (supplyChain.length > 0)
    needs(
      'SUPPLY_CHAIN_REVIEW',
      `supply-chain or tool-configuration files always need a person: ${summarize(supplyChain)}`,
      supplyChain,
    );
  // Whatever the risk threshold says: the verification would run the changed code unreviewed.
  if (verificationInputs.paths.length > 0)
    needs(
      'VERIFICATION_INPUT_CHANGED',
      `changes what a verification executes: ${summarize(verificationInputs.paths)}`,
      verificationInputs.paths,
    );
  if (severityAtLeast(risk, policy.approval.risk_threshold))
    needs('RISK_NEEDS_APPROVAL', `effective risk ${risk} is at or above ${policy.approval.risk_threshold}`);

  if (reasons.some((r) => r.step === 'gating')) return result('NEED_APPROVAL', risk);
  reasons.push({
    step: 'gating',
    outcome: 'pass',
    code: 'ALLOWED',
    message: `risk ${risk}, plans and checks present: allowed without review`,
  });
  return result('ALLOW', risk);
}

/** Bytes of `text` as UTF-8 (a lone surrogate counts as the 3 bytes of U+FFFD, as encoding writes it), counted without encoding it. */
function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}
