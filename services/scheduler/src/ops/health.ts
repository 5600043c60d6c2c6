/**
 * The scheduler's health level (`GET /health` on the ops port): `unhealthy` when Postgres or Redis does not
 * answer, `degraded` when one answers slowly or any trigger's circuit breaker is open, `healthy` otherwise.
 */
// A server or a cluster connection (REDIS_URL may name a Redis Cluster).
import type { RedisConnection as Redis } from '@warden/queue';
import { listOpenBreakers, pingDatabase, type Db } from '@warden/db';
import { pingRedis } from '@warden/queue';
import { runReadinessChecks } from '@warden/observability';

export type HealthLevel = 'healthy' | 'degraded' | 'unhealthy';

/** `/health` answers 503 only when the scheduler cannot work at all; `degraded` still serves (200). */
export function healthStatusCode(health: SchedulerHealth): number {
  return health.level === 'unhealthy' ? 503 : 200;
}

export interface SchedulerHealth {
  level: HealthLevel;
  checks: Array<{ name: string; ok: boolean; latency_ms: number; error?: string }>;
  open_breakers: Array<{ tenant_id: string; event_name: string; state: string }>;
  reasons: string[];
}

export async function schedulerHealth(input: {
  db: Db;
  redis: Redis;
  slowMs: number;
  timeoutMs?: number;
}): Promise<SchedulerHealth> {
  const report = await runReadinessChecks(
    { postgres: () => pingDatabase(input.db), redis: () => pingRedis(input.redis) },
    input.timeoutMs ?? 2000,
  );
  const reasons: string[] = [];
  for (const check of report.checks) {
    if (!check.ok) reasons.push(`${check.name} unreachable: ${check.error}`);
    else if (check.latency_ms > input.slowMs)
      reasons.push(`${check.name} slow: ${check.latency_ms} ms > ${input.slowMs} ms`);
  }
  let open: SchedulerHealth['open_breakers'] = [];
  if (report.checks.find((c) => c.name === 'postgres')?.ok) {
    open = (await listOpenBreakers(input.db).catch(() => [])).map((b) => ({
      tenant_id: b.tenant_id,
      event_name: b.event_name,
      state: b.breaker_state,
    }));
    if (open.length > 0) reasons.push(`${open.length} circuit breaker(s) open`);
  }
  const level: HealthLevel = report.checks.some((c) => !c.ok)
    ? 'unhealthy'
    : reasons.length > 0
      ? 'degraded'
      : 'healthy';
  return { level, checks: report.checks, open_breakers: open, reasons };
}
