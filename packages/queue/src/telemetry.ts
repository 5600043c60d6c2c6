/**
 * BullMQ's `telemetry` option backed by OpenTelemetry, so a job's consumer span continues the trace of the
 * code that added it: the producer's context travels in the job's options (`opts.telemetry.metadata`, a W3C
 * `traceparent`), never in its data, so the job catalog's schemas are untouched.
 *
 * Only adding and processing jobs become spans. BullMQ also traces its own housekeeping (every fetch of the
 * next job, stalled-job checks, pauses, closes); those would be a root span per blocking fetch, so they get a
 * span that records nothing.
 */
import {
  INVALID_SPAN_CONTEXT,
  context,
  propagation,
  trace,
  type Context,
  type Span as OtelSpan,
} from '@opentelemetry/api';
import type { ContextManager, Span, Telemetry, Tracer } from 'bullmq';
import { tracingEnabled } from '@warden/observability';

/** BullMQ operations traced: `add` and `addBulk` (producer), `process` (consumer). */
const TRACED = /^(add|addBulk|process)(\s|$)/;

class JobSpan implements Span<Context> {
  constructor(private readonly span: OtelSpan) {}
  setSpanOnContext(ctx: Context): Context {
    return trace.setSpan(ctx, this.span);
  }
  setAttribute(key: string, value: Parameters<Span['setAttribute']>[1]): void {
    this.span.setAttribute(key, value);
  }
  setAttributes(attributes: Parameters<Span['setAttributes']>[0]): void {
    this.span.setAttributes(attributes);
  }
  addEvent(name: string, attributes?: Parameters<Span['addEvent']>[1]): void {
    this.span.addEvent(name, attributes);
  }
  recordException(
    exception: Parameters<Span['recordException']>[0],
    time?: Parameters<Span['recordException']>[1],
  ): void {
    this.span.recordException(exception, time);
  }
  end(): void {
    this.span.end();
  }
}

let untraced: JobSpan | undefined;
/** The span BullMQ's housekeeping gets: records nothing, its context invalid (a job under it starts a trace). */
const untracedSpan = () => (untraced ??= new JobSpan(trace.wrapSpanContext(INVALID_SPAN_CONTEXT)));

const tracer: Tracer<Context> = {
  startSpan(name, options, ctx) {
    if (!TRACED.test(name)) return untracedSpan();
    // BullMQ's SpanKind enum has OpenTelemetry's numbering (INTERNAL 0 … CONSUMER 4).
    return new JobSpan(
      trace
        .getTracer('warden-queue')
        .startSpan(name, { kind: options?.kind as number }, ctx ?? context.active()),
    );
  },
};

const contextManager: ContextManager<Context> = {
  with: (ctx, fn) => context.with(ctx, fn),
  active: () => context.active(),
  root: () => trace.deleteSpan(context.active()),
  getMetadata(ctx) {
    const carrier: Record<string, string> = {};
    propagation.inject(ctx, carrier);
    return JSON.stringify(carrier);
  },
  fromMetadata(active, metadata) {
    try {
      return propagation.extract(active, JSON.parse(metadata) as Record<string, string>);
    } catch {
      // A job from elsewhere with metadata we cannot read: its span starts a trace of its own.
      return active;
    }
  },
};

const telemetry: Telemetry<Context> = { tracer, contextManager };

/**
 * The telemetry every Warden queue and worker passes to BullMQ: the OpenTelemetry adapter when tracing is on
 * (see `startTracing` in @warden/observability), `undefined` otherwise — BullMQ then adds no span, no context
 * and no metadata, so tracing off costs nothing per job.
 */
export function queueTelemetry(): Telemetry<Context> | undefined {
  return tracingEnabled() ? telemetry : undefined;
}
