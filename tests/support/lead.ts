/**
 * Helpers for the lead miner suites: decisions made through the real supervisor path (DecisionProcessor over a
 * test's own database), the events that produce each kind of decision, scans run with the real Redlock, and
 * the `warden` CLI as a child process.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import type { Db } from '@warden/db';
import {
  redlockLeadScanLock,
  runLeadScan,
  type LeadScanLock,
  type RunLeadScanOptions,
} from '@warden/lead-engine';
import {
  LeadRulesFileSchema,
  SupervisorPolicyFileSchema,
  builtInPolicies,
  type DecisionType,
  type LeadRulesFile,
  type LeadScanReport,
  type TaskEvent,
} from '@warden/domain';
import { createLogger } from '@warden/observability';
import { createRedis, createRedlock } from '@warden/queue';
import { testServers, waitFor as waitForShared } from '@warden/testing';
// The tests package reaches services by path, as the supervisor suites do.
import { DecisionProcessor } from '../../services/supervisor-worker/src/index.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const LEAD_RULES_FILE = fileURLToPath(
  new URL('../../infra/policies/lead-rules.yaml', import.meta.url),
);

type RulesInput = Parameters<typeof LeadRulesFileSchema.parse>[0];

/** The rules file's defaults with `overrides` applied, validated as the service does. */
export function leadRules(overrides: RulesInput = {}): LeadRulesFile {
  return LeadRulesFileSchema.parse(overrides);
}

/** A DecisionProcessor over `db` with the default policy: `monitor` records every decision as ALLOW (would_have). */
export function supervisorFor(db: Db, mode: 'enforce' | 'monitor' = 'enforce'): DecisionProcessor {
  return new DecisionProcessor({
    db,
    policy: SupervisorPolicyFileSchema.parse({ enforcement: { default: mode } }),
    registry: builtInPolicies(),
    logger: createLogger({ service: 'lead-test', level: 'silent' }),
  });
}

let sequence = 0;

/** One event; `ts` defaults to now (decision lag then stays far below any threshold). */
export function taskEvent(
  tenant: string,
  task: string,
  type: string,
  payload: Record<string, unknown>,
  ts: Date = new Date(),
): TaskEvent {
  sequence += 1;
  return {
    event_id: `${task}-${type}-${sequence}-${Math.random().toString(36).slice(2, 8)}`,
    tenant_id: tenant,
    task_id: task,
    event_type: type,
    ts: ts.toISOString(),
    source: 'queue',
    payload,
  };
}

/** Payloads that make the built-in policies decide one way, each with exactly the findings named. */
export const payloads = {
  /** TASK_CREATED → BLOCK with one REDLINE/HIGH `REDLINE_FORBIDDEN_COMMAND` (sudo). */
  forbiddenCommand: {
    agent_spec: { name: 'agent', capabilities: [] },
    command_spec: { name: 'cmd', command: 'sudo', args: ['ls'] },
  },
  /** TASK_CREATED → BLOCK with one REDLINE/HIGH `REDLINE_FORBIDDEN_PATH`. */
  forbiddenPath: { agent_spec: { name: 'agent', capabilities: [] }, paths: ['/etc/shadow'] },
  /** TASK_STEP_COMPLETED → PAUSE with two RISK/MEDIUM findings. */
  riskyStep: { risk_indicators: { error_rate: 0.9, resource_usage: 0.95 } },
  /** TASK_STEP_COMPLETED → ALLOW with one RISK/LOW `RISK_STEP_WARNINGS`. */
  stepWithWarning: { result: { warnings: ['slow disk'] } },
  /** TASK_STEP_COMPLETED → ALLOW, no findings. */
  cleanStep: {},
  /** TASK_FAILED → RETRY (retryable, under the cap), one FAILURE/HIGH. */
  retryableFailure: { error_type: 'network_timeout', retry_count: 0 },
  /** TASK_FAILED → BLOCK (not retryable), one FAILURE/HIGH. */
  fatalFailure: { error_type: 'permission_denied' },
} as const;

export const EVENT_TYPE_OF: Record<keyof typeof payloads, string> = {
  forbiddenCommand: 'TASK_CREATED',
  forbiddenPath: 'TASK_CREATED',
  riskyStep: 'TASK_STEP_COMPLETED',
  stepWithWarning: 'TASK_STEP_COMPLETED',
  cleanStep: 'TASK_STEP_COMPLETED',
  retryableFailure: 'TASK_FAILED',
  fatalFailure: 'TASK_FAILED',
};

/**
 * A task's events in order, one per step: `ts` 1 ms apart ending at `end` (now by default), so the supervisor
 * applies them in that order within one transaction.
 */
export function taskEvents(
  tenant: string,
  task: string,
  steps: ReadonlyArray<keyof typeof payloads>,
  end: Date = new Date(),
): TaskEvent[] {
  return steps.map((step, i) =>
    taskEvent(
      tenant,
      task,
      EVENT_TYPE_OF[step],
      { ...payloads[step] },
      new Date(end.getTime() - (steps.length - 1 - i)),
    ),
  );
}

/** Sends events through the real supervisor path and checks each was decided; returns the decision types. */
export async function decide(processor: DecisionProcessor, events: TaskEvent[]): Promise<DecisionType[]> {
  const outcomes = await processor.processEvents(events);
  return outcomes.map((outcome, i) => {
    if (outcome.status !== 'decided')
      throw new Error(`event ${events[i]!.event_id} was not decided: ${JSON.stringify(outcome)}`);
    return outcome.decision_type;
  });
}

/** The real single-flight lock over the test Redis; `close()` disconnects it. */
export function testLeadLock(): { lock: LeadScanLock; close(): void } {
  const redis = createRedis(testServers.redisUrl, 'general');
  return {
    lock: redlockLeadScanLock(createRedlock([redis]), { ttlMs: 5000 }),
    close: () => redis.disconnect(),
  };
}

/** A forced (lock-free) scan of one tenant with the default rules unless told otherwise. */
export function scan(
  db: Db,
  tenantId: string,
  options: Partial<RunLeadScanOptions> = {},
): Promise<LeadScanReport> {
  return runLeadScan(db, { tenantId, window: '24h', rules: leadRules(), force: true, ...options });
}

/** Findings of one rule in a report. */
export function findingsOf(report: LeadScanReport, code: string) {
  return report.findings.filter((f) => f.code === code);
}

/** Rows of a table for a tenant (a count), e.g. to prove a dry run wrote nothing. */
export async function countRows(
  db: Db,
  table: 'lead_findings' | 'lead_scans' | 'tasks',
  tenantId: string,
  where = sql`true`,
): Promise<number> {
  const result = await sql<{
    n: number;
  }>`select count(*)::int as n from ${sql.table(table)} where tenant_id = ${tenantId} and ${where}`.execute(
    db,
  );
  return result.rows[0]!.n;
}

/** Audit rows the lead miner wrote for a tenant (`LEAD_*`). */
export async function leadAudits(
  db: Db,
  tenantId: string,
): Promise<Array<{ task_id: string; event_type: string; payload: Record<string, unknown> }>> {
  return db
    .selectFrom('task_audits')
    .select(['task_id', 'event_type', 'payload'])
    .where('tenant_id', '=', tenantId)
    .where('event_type', 'like', 'LEAD_%')
    .orderBy('audit_id')
    .execute();
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `warden …` from the repository root with the given variables on top of this process's environment. */
export function runWarden(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'packages/cli/src/main.ts', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs` (generous: shared CPUs). */
export function waitFor<T>(
  check: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 60_000,
): Promise<T> {
  return waitForShared(what, check, { timeoutMs, intervalMs: 100 });
}
