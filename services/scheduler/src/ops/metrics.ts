import { Counter, Gauge, Histogram, type Registry } from '@warden/observability';
import { countActiveExecutions, listOpenBreakers, type Db } from '@warden/db';

/**
 * The scheduler's series (listed in docs/scheduler.md, "Health and metrics"). Counters and histograms count
 * what this replica did (each run finishes in exactly one replica, so sums across replicas are exact). The
 * two gauges are read from Postgres and are the same on every replica: aggregate them with `max`, not `sum`.
 */
export function createSchedulerMetrics(registry: Registry, db: Db) {
  let cached:
    | Promise<{
        active: number;
        open: Array<{ tenant_id: string; event_name: string; breaker_state: string }>;
      }>
    | undefined;
  let cachedAt = 0;
  const read = () => {
    if (!cached || Date.now() - cachedAt > 1000) {
      cachedAt = Date.now();
      cached = Promise.all([countActiveExecutions(db), listOpenBreakers(db)])
        .then(([active, open]) => ({ active, open }))
        .catch(() => ({ active: NaN, open: [] }));
    }
    return cached;
  };
  const seenBreakers = new Set<string>();

  return {
    executions: new Counter({
      name: 'cron_executions_total',
      help: 'Finished executions (and skips), by status and decision mode',
      labelNames: ['status', 'decision_mode'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'cron_execution_duration_seconds',
      help: 'Execution duration, start to finish, by status',
      labelNames: ['status'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers: [registry],
    }),
    delay: new Histogram({
      name: 'cron_trigger_delay_seconds',
      help: 'Start of a scheduled run minus its fire time (manual runs and backfills left out)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    cost: new Histogram({
      name: 'cron_execution_cost_usd',
      help: 'Cost of finished runs in USD',
      buckets: [0, 0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 50],
      registers: [registry],
    }),
    llmCalls: new Counter({
      name: 'cron_llm_calls_total',
      help: 'LLM calls reported by handlers',
      registers: [registry],
    }),
    active: new Gauge({
      name: 'cron_active_executions',
      help: 'Executions running now, all replicas (read from Postgres)',
      registers: [registry],
      async collect() {
        this.set((await read()).active);
      },
    }),
    breakerOpen: new Gauge({
      name: 'cron_circuit_breaker_open',
      help: "1 while a trigger's circuit breaker is open or half-open (read from Postgres)",
      labelNames: ['tenant_id', 'event_name'],
      registers: [registry],
      async collect() {
        const { open } = await read();
        const now = new Set(open.map((b) => `${b.tenant_id}\u0000${b.event_name}`));
        for (const key of seenBreakers) {
          if (!now.has(key)) {
            const [tenant_id, event_name] = key.split('\u0000');
            this.set({ tenant_id: tenant_id!, event_name: event_name! }, 0);
          }
        }
        for (const b of open) {
          seenBreakers.add(`${b.tenant_id}\u0000${b.event_name}`);
          this.set({ tenant_id: b.tenant_id, event_name: b.event_name }, 1);
        }
      },
    }),
    skips: new Counter({
      name: 'cron_skips_total',
      help: 'Fires skipped, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    duplicates: new Counter({
      name: 'cron_duplicate_fires_total',
      help: 'Fire deliveries that found their execution already recorded',
      registers: [registry],
    }),
    breakerTransitions: new Counter({
      name: 'cron_circuit_breaker_transitions_total',
      help: 'Breaker transitions',
      labelNames: ['transition'],
      registers: [registry],
    }),
    rollbacks: new Counter({
      name: 'cron_migration_rollbacks_total',
      help: 'Migrations rolled back by a red line',
      labelNames: ['red_line'],
      registers: [registry],
    }),
    costOverruns: new Counter({
      name: 'cron_cost_overruns_total',
      help: 'Runs that cost more than max_cost_per_run_usd',
      registers: [registry],
    }),
    reconciled: new Counter({
      name: 'cron_reconcile_changes_total',
      help: 'Job scheduler changes made by reconciliation',
      labelNames: ['change'],
      registers: [registry],
    }),
    swept: new Counter({
      name: 'cron_sweeper_actions_total',
      help: 'Runs the sweeper moved on (lost jobs, overdue handler calls)',
      labelNames: ['action'],
      registers: [registry],
    }),
  };
}
export type SchedulerMetrics = ReturnType<typeof createSchedulerMetrics>;
