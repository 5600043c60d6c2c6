import { Counter, Gauge, Histogram, type Registry } from '@warden/observability';

/** The executor's Prometheus series. */
export function createExecutorMetrics(registry: Registry) {
  return {
    outcomes: new Counter({
      name: 'executor_changesets_total',
      help: 'Change sets finished by this executor, by outcome (completed, replayed, refused, rolled_back, rollback_failed)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    applySeconds: new Histogram({
      name: 'executor_apply_duration_seconds',
      help: 'Time to apply a change set (all writes, fsyncs included)',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    rollbackSeconds: new Histogram({
      name: 'executor_rollback_duration_seconds',
      help: 'Time to restore a workspace after a failed change set',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    lockWaitSeconds: new Histogram({
      name: 'executor_lock_wait_seconds',
      help: 'Time waited for a workspace lock',
      buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
      registers: [registry],
    }),
    recoveries: new Counter({
      name: 'executor_recoveries_total',
      help: 'In-flight journals recovered after a crash or a lost lock, by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    staleLockRefusals: new Counter({
      name: 'executor_stale_lock_refusals_total',
      help: 'Writes refused because a newer fencing token exists (this holder lost its lock)',
      registers: [registry],
    }),
    active: new Gauge({
      name: 'executor_active_executions',
      help: 'Change sets being executed now',
      registers: [registry],
    }),
  };
}
export type ExecutorMetrics = ReturnType<typeof createExecutorMetrics>;
