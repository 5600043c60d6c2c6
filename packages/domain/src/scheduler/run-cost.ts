/**
 * The daily cost cap while a run is under way. Governance reserves a run's estimate before its first call; a run
 * that goes on — the fallback after a failed agent, or a retry — must fit the cap again with what it has already
 * spent, because failed calls cost money too. Pure: the scheduler reads the day's ledger and asks.
 */

/** A stop verdict, or null when the run may make its next calls. */
export function dailyCostStop(input: {
  /** `max_daily_cost_usd`, or null for no cap. */
  cap_usd: number | null;
  /** Spent and reserved today by the trigger's other runs. */
  others_today_usd: number;
  /** What this run's calls have cost so far (reported, or charged their reservation). */
  run_spent_usd: number;
  /** What the next calls reserve: the run's estimate. */
  reservation_usd: number;
}): string | null {
  if (input.cap_usd === null) return null;
  const spent = input.others_today_usd + input.run_spent_usd;
  const projected = spent + input.reservation_usd;
  if (spent < input.cap_usd && projected <= input.cap_usd) return null;
  const money = (n: number) => `$${n.toFixed(4)}`;
  return `stopped by the daily cost cap: ${money(input.others_today_usd)} by other runs today + ${money(input.run_spent_usd)} by this run so far + ${money(input.reservation_usd)} for its next calls would pass the ${money(input.cap_usd)} cap`;
}

/**
 * A run that waited after it was governed — in the `buffer_one` slot or for its jitter — is governed again when
 * it starts: a person may have paused the trigger, the breaker may have opened, the day's caps may have filled
 * while it waited. The skip to record, or null when it may start. (For the breaker's own probe the caller
 * passes `closed`: the half-open breaker is waiting for it.)
 */
export function startGate(input: {
  enabled: boolean;
  paused: boolean;
  pause_source: 'manual' | 'circuit_breaker' | null;
  pause_note: string | null;
  breaker_state: 'closed' | 'open' | 'half_open';
  breaker_reason: string | null;
  max_daily_runs: number | null;
  /** The trigger's other runs today. */
  runs_today: number;
  cost_stop: string | null;
}): {
  skip_reason: 'disabled' | 'paused' | 'circuit_open' | 'max_daily_runs' | 'max_daily_cost';
  why: string;
} | null {
  const waited = 'while it waited to start';
  if (!input.enabled) return { skip_reason: 'disabled', why: `the trigger was disabled ${waited}` };
  if (input.paused && input.pause_source === 'manual')
    return {
      skip_reason: 'paused',
      why: `the trigger was paused ${waited}${input.pause_note ? `: ${input.pause_note}` : ''}`,
    };
  if (input.breaker_state !== 'closed')
    return {
      skip_reason: 'circuit_open',
      why: `the circuit breaker went ${input.breaker_state.replace('_', '-')} ${waited}${input.breaker_reason ? ` (${input.breaker_reason})` : ''}`,
    };
  if (input.max_daily_runs !== null && input.runs_today >= input.max_daily_runs)
    return {
      skip_reason: 'max_daily_runs',
      why: `${input.runs_today} runs today already, the cap is ${input.max_daily_runs}`,
    };
  if (input.cost_stop) return { skip_reason: 'max_daily_cost', why: input.cost_stop };
  return null;
}
