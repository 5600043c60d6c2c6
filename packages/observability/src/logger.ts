import { destination, pino, stdSerializers, type DestinationStream, type Logger } from 'pino';
import { involvesDatabaseError, redactKeysInText, redactSecrets, redactSerializedError } from './redact.js';
import { traceLogFields } from './tracing.js';

export type { Logger } from 'pino';

export interface CreateLoggerOptions {
  /** The service name stamped on every line (`service` field). */
  service: string;
  /** pino level. @defaultValue `info` */
  level?: string;
  /** Where lines go. @defaultValue standard output */
  destination?: DestinationStream;
}

/** pino's error serializer, then the redaction of error text (see `redactSerializedError`). */
function serializeError(error: unknown): unknown {
  const serialized = stdSerializers.err(error as Error) as unknown;
  return serialized && typeof serialized === 'object'
    ? redactSerializedError(serialized as Record<string, unknown>, {
        fromDatabase: involvesDatabaseError(error),
      })
    : serialized;
}

/**
 * The root logger: one JSON line per event with the standard fields (`ts, level, service, module, action,
 * status, trace_id, run_id, latency_ms, error_code, msg`); children add `module`. Secret-named fields are
 * redacted at any depth and API keys inside messages are masked. While a span is active (tracing on, see
 * `startTracing`), every line also carries its `trace_id` and `span_id`; a `trace_id` the line sets itself wins.
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: options.service },
      messageKey: 'msg',
      mixin: traceLogFields,
      timestamp: () => `,"ts":"${new Date().toISOString()}"`,
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => redactSecrets(object) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args, method) {
          const masked = args.map((arg) =>
            typeof arg === 'string' ? redactKeysInText(arg) : arg,
          ) as Parameters<typeof method>;
          method.apply(this, masked);
        },
      },
      serializers: { err: serializeError, error: serializeError },
    },
    options.destination ?? destination({ sync: false }),
  );
}
