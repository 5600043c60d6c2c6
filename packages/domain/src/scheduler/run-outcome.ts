/**
 * How a run's handler calls end and what a finished run records: a call's end from its report (or its
 * deadline passing), the shadow comparison of agent and fallback, and the note a run the fallback rescued
 * keeps. Pure: the scheduler writes what these return inside the transaction that locks the run.
 */
import { describeIssues } from '../validation.js';
import { HandlerResultSchema, type HandlerErrorKind, type HandlerResult } from './execution.js';
import { compareOutputs } from './migration.js';

/** How a handler call ended, in the terms of the execution ledger: its result, or the kind of failure. */
export type HandlerOutcome =
  | { ok: true; result: HandlerResult }
  | {
      ok: false;
      kind: HandlerErrorKind;
      message: string;
      /** What the failed call spent, when its handler said. */
      cost_usd?: number;
      llm_calls?: number;
    };

/** A handler call as its ledger row has it. */
export interface HandlerCallRow {
  role: 'agent' | 'fallback';
  status: 'running' | 'success' | 'failed' | 'timeout';
  started_at: Date;
  deadline_at: Date;
  result: Record<string, unknown> | null;
  error: string | null;
}

/** What to write when a call ends. */
export interface HandlerCallEnd {
  status: 'success' | 'failed' | 'timeout';
  result?: Record<string, unknown>;
  error_kind?: HandlerErrorKind;
  error?: string;
}

/** Longest error text kept from a handler's report. */
export const MAX_HANDLER_ERROR_CHARS = 4000;

/**
 * A deadline counts as passed this much early (clock skew between the sweeper's replica and the database).
 */
const DEADLINE_TOLERANCE_MS = 50;

/**
 * The end of a running call: from its handler's outcome, or — `{ deadline: true }`, seen by the sweeper — its
 * deadline passing. A result that breaks the result schema fails the call as `validation` (never retried).
 * Undefined when the deadline has not passed yet (a sweeper whose clock runs ahead). A failure's result holds
 * what it cost: the handler's figure, or `unreportedCostUsd` (the run's reservation) when it gave none.
 *
 * @param unreportedCostUsd - what a failure that reports no cost is charged. @defaultValue `0`
 */
export function handlerCallEnd(
  call: Pick<HandlerCallRow, 'started_at' | 'deadline_at'>,
  outcome: HandlerOutcome | { deadline: true },
  now: Date,
  unreportedCostUsd = 0,
): HandlerCallEnd | undefined {
  // A call that fails without saying what it spent may still have spent: it is charged the run's reservation,
  // so failures cannot run up an unseen bill under the daily cap.
  const charged = (reported: { cost_usd?: number; llm_calls?: number }) =>
    reported.cost_usd === undefined && reported.llm_calls === undefined && unreportedCostUsd === 0
      ? {}
      : {
          result: {
            cost_usd: reported.cost_usd ?? unreportedCostUsd,
            ...(reported.llm_calls !== undefined ? { llm_calls: reported.llm_calls } : {}),
            cost_source: reported.cost_usd !== undefined ? 'reported' : 'reservation',
          },
        };
  if ('deadline' in outcome) {
    if (call.deadline_at.getTime() > now.getTime() + DEADLINE_TOLERANCE_MS) return undefined;
    return {
      status: 'timeout',
      ...charged({}),
      error_kind: 'timeout',
      error: `no result within ${call.deadline_at.getTime() - call.started_at.getTime()} ms (max_duration_ms)`,
    };
  }
  if (outcome.ok) {
    const parsed = HandlerResultSchema.safeParse(outcome.result);
    if (parsed.success) return { status: 'success', result: parsed.data as Record<string, unknown> };
    return {
      status: 'failed',
      error_kind: 'validation',
      error: `the handler returned an invalid result: ${describeIssues(parsed.error.issues)
        .map((i) => `${i.path}: ${i.message}`)
        .join('; ')}`,
    };
  }
  return {
    status: outcome.kind === 'timeout' ? 'timeout' : 'failed',
    ...charged(outcome),
    error_kind: outcome.kind,
    error: outcome.message.slice(0, MAX_HANDLER_ERROR_CHARS),
  };
}

/**
 * A shadow run's comparison, once the fallback served it: the two outputs compared on `compareKeys` (the
 * whole output when empty), or — the agent having failed — a comparison that counts as not consistent. Null
 * when there is nothing to compare (not a shadow run, or the fallback did not succeed).
 */
export function shadowComparison(input: {
  decision_mode: string | null;
  agent: Pick<HandlerCallRow, 'status' | 'result' | 'error'> | undefined;
  fallback: Pick<HandlerCallRow, 'status' | 'result'> | undefined;
  compare_keys: readonly string[];
}): Record<string, unknown> | null {
  const { agent, fallback } = input;
  if (input.decision_mode !== 'shadow' || !agent || !fallback || fallback.status !== 'success') return null;
  if (agent.status === 'success')
    return { ...compareOutputs(agent.result?.output, fallback.result?.output, input.compare_keys) };
  return {
    equal: false,
    compared_keys: input.compare_keys.length > 0 ? [...input.compare_keys] : ['(whole output)'],
    differences: [],
    agent_error: agent.error ?? agent.status,
  };
}

/**
 * A run the fallback rescued keeps why the agent did not serve it; null when the agent served or never ran.
 */
export function fallbackNote(agent: Pick<HandlerCallRow, 'status' | 'error'> | undefined): string | null {
  if (!agent || agent.status === 'success' || agent.status === 'running') return null;
  return `agent ${agent.status === 'timeout' ? 'timed out' : 'failed'}${agent.error ? `: ${agent.error}` : ''}`;
}
