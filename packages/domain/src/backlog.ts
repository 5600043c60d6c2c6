/** Alert levels of the supervisor backlog, documented in docs/supervisor.md. */
export type AlertLevel = 'ok' | 'warning' | 'critical';

export interface BacklogLevels {
  backlog: AlertLevel;
  lag: AlertLevel;
  failure_rate: AlertLevel;
  /** The worst of the three. */
  level: AlertLevel;
}

const RANK: Record<AlertLevel, number> = { ok: 0, warning: 1, critical: 2 };

/** pending < 10 ok, 10–50 warning, > 50 critical. */
export function backlogLevel(pending: number): AlertLevel {
  return pending < 10 ? 'ok' : pending <= 50 ? 'warning' : 'critical';
}

/** oldest pending age < 5 s ok, 5–30 s warning, > 30 s critical. */
export function lagLevel(seconds: number): AlertLevel {
  return seconds < 5 ? 'ok' : seconds <= 30 ? 'warning' : 'critical';
}

/** failed share < 1 % ok, 1–5 % warning, > 5 % critical. */
export function failureRateLevel(rate: number): AlertLevel {
  return rate < 0.01 ? 'ok' : rate <= 0.05 ? 'warning' : 'critical';
}

/** Levels for inbox counts; the failure rate is (failed + dead) over every finished or failing row. */
export function backlogLevels(stats: {
  pending: number;
  completed: number;
  failed: number;
  dead: number;
  oldest_pending_age_seconds: number;
}): BacklogLevels & { failure_rate_value: number } {
  const finished = stats.completed + stats.failed + stats.dead;
  const rate = finished === 0 ? 0 : (stats.failed + stats.dead) / finished;
  const levels = {
    backlog: backlogLevel(stats.pending),
    lag: lagLevel(stats.oldest_pending_age_seconds),
    failure_rate: failureRateLevel(rate),
  };
  const level = (Object.values(levels) as AlertLevel[]).reduce(
    (worst, l) => (RANK[l] > RANK[worst] ? l : worst),
    'ok' as AlertLevel,
  );
  return { ...levels, level, failure_rate_value: rate };
}
