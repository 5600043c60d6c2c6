/**
 * OpenTelemetry traces for a Warden process: the one place the SDK is set up (`startTracing`), and the few
 * helpers the services use to open spans, carry a span's context across a group commit, and stamp trace ids on
 * log lines. Off unless the standard `OTEL_*` variables ask for it (see docs/observability.md): then the SDK
 * is never loaded, nothing is registered with the OpenTelemetry API, `withSpan` calls its function straight
 * away, and a log line gets nothing — the hot path pays one boolean check.
 */
import {
  INVALID_SPAN_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  isSpanContextValid,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
} from '@opentelemetry/api';
import type { SpanExporter } from '@opentelemetry/sdk-trace-node';

export { SpanKind, type Attributes, type Context, type Link, type Span } from '@opentelemetry/api';

/** What the `OTEL_*` variables asked for, when they asked for traces at all. */
export interface TracingSettings {
  /** `otlp` (OTLP/HTTP with JSON bodies) or `console` (spans printed to stdout, for a quick look). */
  exporter: 'otlp' | 'console';
  /** `service.name` of every span. */
  serviceName: string;
  /** Where OTLP spans go. @defaultValue the exporter's own: `http://localhost:4318/v1/traces` */
  url?: string;
}

/** A setting of the `OTEL_*` variables Warden cannot honour: the process refuses to start, naming it. */
export class TracingConfigError extends Error {
  override readonly name = 'TracingConfigError';
}

type Env = Record<string, string | undefined>;

const PROTOCOLS = new Set(['http/json']);

/**
 * Reads the standard variables. Traces are on when `OTEL_TRACES_EXPORTER` names `otlp` or `console`, or when
 * an OTLP endpoint is set and `OTEL_TRACES_EXPORTER` is not `none`; `OTEL_SDK_DISABLED=true` turns them off
 * whatever else is set. Unlike the OpenTelemetry default (`otlp`), nothing set means no traces: a Warden that
 * was not asked to export does not try to reach a collector. Returns `undefined` when traces are off; throws
 * {@link TracingConfigError} for an exporter or protocol it does not support.
 */
export function tracingSettingsFromEnv(env: Env, service: string): TracingSettings | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  const named = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');
  const tracesEndpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || undefined;
  const baseEndpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || undefined;
  if (named.includes('none')) return undefined;
  if (named.length === 0 && !tracesEndpoint && !baseEndpoint) return undefined;
  const unknown = named.filter((name) => name !== 'otlp' && name !== 'console');
  if (unknown.length > 0)
    throw new TracingConfigError(
      `OTEL_TRACES_EXPORTER: "${unknown.join(',')}" is not supported (use otlp, console or none)`,
    );
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL)?.trim();
  if (protocol && !PROTOCOLS.has(protocol))
    throw new TracingConfigError(
      `OTEL_EXPORTER_OTLP_PROTOCOL: "${protocol}" is not supported; Warden exports OTLP/HTTP with JSON bodies (http/json), which every OpenTelemetry collector, Jaeger and Tempo accept on port 4318`,
    );
  const url = tracesEndpoint ?? (baseEndpoint ? `${baseEndpoint.replace(/\/+$/, '')}/v1/traces` : undefined);
  if (url !== undefined && !(URL.canParse(url) && /^https?:$/.test(new URL(url).protocol)))
    throw new TracingConfigError(
      `${tracesEndpoint ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT'}: "${url}" is not an http(s) URL`,
    );
  return {
    exporter: named.length === 0 || named.includes('otlp') ? 'otlp' : 'console',
    serviceName: env.OTEL_SERVICE_NAME?.trim() || `warden-${service}`,
    ...(url ? { url } : {}),
  };
}

/** The part of a logger tracing reports its own trouble to (an unreachable collector). */
export interface TracingLogger {
  warn(obj: object, msg: string): void;
}

export interface StartTracingOptions {
  /** The service's name: `warden-<service>` is the spans' `service.name` unless `OTEL_SERVICE_NAME` is set. */
  service: string;
  /** Where the `OTEL_*` variables are read. @defaultValue `process.env` */
  env?: Env;
  /** Where export failures are reported (once, then at most every 5 minutes). @defaultValue nowhere */
  logger?: TracingLogger;
  /** Export spans here instead of what `OTEL_TRACES_EXPORTER` names. @defaultValue from the variables */
  exporter?: SpanExporter;
}

/** The running SDK of this process. */
export interface Tracing {
  readonly settings: TracingSettings;
  /** Sends the spans still buffered. Never rejects. */
  flush(): Promise<void>;
  /** Flushes (for at most `timeoutMs`) and turns tracing off again. Never rejects. @defaultValue `3000` */
  shutdown(timeoutMs?: number): Promise<void>;
}

let running: Tracing | undefined;
let enabled = false;

/** How often an export failure is logged again while the collector stays away. */
const ERROR_LOG_INTERVAL_MS = 5 * 60_000;

/**
 * Starts the OpenTelemetry SDK for this process when the `OTEL_*` variables ask for it (see
 * {@link tracingSettingsFromEnv}); returns `undefined`, and changes nothing, when they do not. Spans leave
 * through a batch processor: a request never waits for the collector, a full buffer drops spans, and a
 * collector that cannot be reached is one warning (then one every 5 minutes), never a failed request.
 * Calling it again while started returns the running instance. The SDK is loaded only here, when asked for
 * (~70 ms of module loading a process without traces never pays).
 *
 * @example
 * const tracing = await startTracing({ service: 'api', logger });
 * // … on stop:
 * await tracing?.shutdown();
 */
export async function startTracing(options: StartTracingOptions): Promise<Tracing | undefined> {
  if (running) return running;
  const settings = tracingSettingsFromEnv(options.env ?? process.env, options.service);
  if (!settings) return undefined;
  const [{ setGlobalErrorHandler }, { OTLPTraceExporter }, resources, sdk] = await Promise.all([
    import('@opentelemetry/core'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace-node'),
  ]);
  if (running) return running;
  const { BatchSpanProcessor, ConsoleSpanExporter, NodeTracerProvider } = sdk;
  const { defaultResource, detectResources, envDetector, resourceFromAttributes } = resources;
  const exporter =
    options.exporter ??
    (settings.exporter === 'console'
      ? new ConsoleSpanExporter()
      : new OTLPTraceExporter(settings.url ? { url: settings.url } : {}));
  const provider = new NodeTracerProvider({
    resource: defaultResource()
      .merge(detectResources({ detectors: [envDetector] }))
      .merge(resourceFromAttributes({ 'service.name': settings.serviceName, 'service.namespace': 'warden' })),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  let lastLogged = 0;
  let suppressed = 0;
  setGlobalErrorHandler((error) => {
    const now = Date.now();
    if (now - lastLogged < ERROR_LOG_INTERVAL_MS) {
      suppressed += 1;
      return;
    }
    options.logger?.warn(
      {
        module: 'tracing',
        action: 'export',
        status: 'error',
        err: error,
        ...(suppressed > 0 ? { suppressed } : {}),
      },
      'spans could not be exported (requests are not affected); next report in 5 minutes at the earliest',
    );
    lastLogged = now;
    suppressed = 0;
  });
  // Registers the AsyncLocalStorage context manager and the W3C trace-context propagator with the API.
  provider.register();
  enabled = true;
  const bounded = (work: Promise<unknown>, ms: number) =>
    Promise.race([
      work.then(
        () => undefined,
        () => undefined,
      ),
      new Promise<void>((resolve) => setTimeout(resolve, ms).unref()),
    ]);
  const instance: Tracing = {
    settings,
    flush: () => bounded(provider.forceFlush(), 3000),
    async shutdown(timeoutMs = 3000) {
      if (running !== instance) return;
      enabled = false;
      running = undefined;
      await bounded(provider.shutdown(), timeoutMs);
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
  running = instance;
  return instance;
}

/** Whether this process records spans (see {@link startTracing}). */
export function tracingEnabled(): boolean {
  return enabled;
}

let noop: Span | undefined;
/** A span that records nothing, for `withSpan` with tracing off (made on first use). */
const noopSpan = (): Span => (noop ??= trace.wrapSpanContext(INVALID_SPAN_CONTEXT));
const TRACER_NAME = 'warden';

export interface WithSpanOptions {
  /** @defaultValue `SpanKind.INTERNAL` */
  kind?: SpanKind;
  /** @defaultValue none */
  attributes?: Attributes;
  /** Other spans this one belongs to (the rest of a group commit). @defaultValue none */
  links?: Link[];
  /** The parent. @defaultValue the active context */
  parent?: Context;
}

/**
 * Runs `fn` inside a new active span named `name`, ended when `fn` settles; a throw is recorded on the span
 * (status ERROR) and rethrown. With tracing off, `fn` gets a span that records nothing, and nothing else
 * happens.
 */
export function withSpan<T>(
  name: string,
  options: WithSpanOptions,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  // Not an async function: with tracing off the caller gets `fn`'s own promise, not one wrapped around it.
  if (!enabled) return fn(noopSpan());
  const { parent, ...spanOptions } = options;
  return trace
    .getTracer(TRACER_NAME)
    .startActiveSpan(name, spanOptions, parent ?? context.active(), async (span) => {
      try {
        return await fn(span);
      } catch (error) {
        span.recordException(error as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
        throw error;
      } finally {
        span.end();
      }
    });
}

/** Starts a span the caller ends (one that outlives a call, e.g. an HTTP request's). `undefined` when off. */
export function startSpan(name: string, options: WithSpanOptions = {}): Span | undefined {
  if (!enabled) return undefined;
  const { parent, ...spanOptions } = options;
  return trace.getTracer(TRACER_NAME).startSpan(name, spanOptions, parent ?? context.active());
}

/** `ctx` with `span` as its active span (the parent of spans started under it). */
export function contextWithSpan(ctx: Context, span: Span): Context {
  return trace.setSpan(ctx, span);
}

/** Marks `span` as failed (status ERROR) with `message`. */
export function markSpanFailed(span: Span, message?: string): void {
  span.setStatus({ code: SpanStatusCode.ERROR, ...(message ? { message } : {}) });
}

/** Sets attributes on the active span (no-op when off or outside a span). */
export function setSpanAttributes(attributes: Attributes): void {
  if (enabled) trace.getActiveSpan()?.setAttributes(attributes);
}

/** The W3C trace id (32 hex digits) of the active span, if tracing is on and a span is active. */
export function activeTraceId(): string | undefined {
  if (!enabled) return undefined;
  const spanContext = trace.getActiveSpan()?.spanContext();
  return spanContext && isSpanContextValid(spanContext) ? spanContext.traceId : undefined;
}

/**
 * `trace_id` and `span_id` of the active span, for the logger's mixin: every line logged while a span is
 * active carries them. A fresh object each call (pino merges the line's own fields into it).
 */
export function traceLogFields(): Record<string, string> {
  if (!enabled) return {};
  const spanContext = trace.getActiveSpan()?.spanContext();
  return spanContext && isSpanContextValid(spanContext)
    ? { trace_id: spanContext.traceId, span_id: spanContext.spanId }
    : {};
}

/** The active context, to resume later in another call chain (`runInContext`); `undefined` when off. */
export function captureContext(): Context | undefined {
  return enabled ? context.active() : undefined;
}

/** Runs `fn` with `ctx` active (as is, when `ctx` is `undefined`). */
export function runInContext<T>(ctx: Context | undefined, fn: () => T): T {
  return ctx === undefined || !enabled ? fn() : context.with(ctx, fn);
}

// What `createContextKey` makes, without touching the API in a process that never traces.
const GROUP_MEMBERS = Symbol.for('warden.group-members');

/**
 * Runs one group of a group commit: under the first item's context (its span is the parent of what the group
 * does), with the other items' spans kept for {@link groupMemberLinks}, so the group's transaction span links
 * every request it served.
 */
export function runInGroupContext<T>(contexts: ReadonlyArray<Context | undefined>, fn: () => T): T {
  if (!enabled) return fn();
  const [first, ...rest] = contexts;
  const links: Link[] = [];
  for (const ctx of rest) {
    const spanContext = ctx && trace.getSpanContext(ctx);
    if (spanContext && isSpanContextValid(spanContext)) links.push({ context: spanContext });
  }
  return context.with((first ?? context.active()).setValue(GROUP_MEMBERS, links), fn);
}

/** Links to the spans of the other items of the group being run (see {@link runInGroupContext}). */
export function groupMemberLinks(): Link[] {
  if (!enabled) return [];
  return (context.active().getValue(GROUP_MEMBERS) as Link[] | undefined) ?? [];
}

/** The active span's `traceparent` (and `tracestate`) for an outgoing request; `{}` when off. */
export function traceHeaders(): Record<string, string> {
  const headers: Record<string, string> = {};
  if (enabled) propagation.inject(context.active(), headers);
  return headers;
}

/** The context an incoming request's `traceparent` names (or the active one when it names none). */
export function contextFromHeaders(headers: Record<string, string | string[] | undefined>): Context {
  return propagation.extract(context.active(), headers);
}
