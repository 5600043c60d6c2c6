import { Counter, Histogram, type Registry } from '@warden/observability';

/** The API's own series, registered once per app on the service's registry. */
export function createApiMetrics(registry: Registry) {
  return {
    requestDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by method, route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    eventsIngested: new Counter({
      name: 'events_ingested_total',
      help: 'Events received through POST /v1/events, by result (accepted or duplicate)',
      labelNames: ['result'],
      registers: [registry],
    }),
    enqueueFailures: new Counter({
      name: 'api_enqueue_failures_total',
      help: 'Accepted events whose enqueue failed or timed out (the supervisor poller picks them up)',
      registers: [registry],
    }),
  };
}
export type ApiMetrics = ReturnType<typeof createApiMetrics>;
