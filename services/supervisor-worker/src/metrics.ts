import { Counter, Gauge, Histogram, type Registry } from '@warden/observability';
import { backlogStats, type Db } from '@warden/db';

/** The supervisor's series (docs/supervisor.md). Inbox gauges are read from Postgres when Prometheus scrapes. */
export function createSupervisorMetrics(registry: Registry, db: Db) {
  let lastStats: Promise<Awaited<ReturnType<typeof backlogStats>>> | undefined;
  let lastAt = 0;
  // One query per scrape serves every inbox gauge.
  const stats = () => {
    if (!lastStats || Date.now() - lastAt > 1000) {
      lastAt = Date.now();
      lastStats = backlogStats(db).catch(() => ({
        pending: NaN,
        processing: NaN,
        completed: NaN,
        failed: NaN,
        dead: NaN,
        oldest_pending_age_seconds: NaN,
      }));
    }
    return lastStats;
  };
  const inboxGauge = (
    name: string,
    help: string,
    read: (s: Awaited<ReturnType<typeof backlogStats>>) => number,
  ) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        this.set(read(await stats()));
      },
    });
  return {
    inboxPending: inboxGauge(
      'supervisor_inbox_pending',
      'Inbox rows waiting to be decided',
      (s) => s.pending,
    ),
    inboxFailed: inboxGauge(
      'supervisor_inbox_failed',
      'Inbox rows whose last attempt failed (retrying) or that are dead',
      (s) => s.failed + s.dead,
    ),
    processingLag: inboxGauge(
      'supervisor_processing_lag_seconds',
      'Age of the oldest pending inbox row',
      (s) => s.oldest_pending_age_seconds,
    ),
    processed: new Counter({
      name: 'supervisor_events_processed_total',
      help: 'Events decided, by decision type',
      labelNames: ['decision_type'],
      registers: [registry],
    }),
    failed: new Counter({
      name: 'supervisor_events_failed_total',
      help: 'Failed processing attempts, by outcome (failed = will retry, dead = gave up)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    decisionLatency: new Histogram({
      name: 'supervisor_decision_latency_seconds',
      help: 'Decision lag: commit time minus the event timestamp',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    policiesStopped: new Counter({
      name: 'supervisor_policies_stopped_total',
      help: 'Events whose policy was stopped (over its CPU budget, or its worker thread died); each failed closed',
      labelNames: ['reason'],
      registers: [registry],
    }),
    groupSize: new Histogram({
      name: 'supervisor_group_size',
      help: 'Events decided per transaction',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
      registers: [registry],
    }),
    reenqueued: new Counter({
      name: 'supervisor_poller_reenqueued_total',
      help: 'Inbox rows the poller put back on the queue',
      registers: [registry],
    }),
    claimsReleased: new Counter({
      name: 'supervisor_poller_claims_released_total',
      help: 'Expired claims released by the poller',
      registers: [registry],
    }),
  };
}
export type SupervisorMetrics = ReturnType<typeof createSupervisorMetrics>;
