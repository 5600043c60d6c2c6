import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  TracingConfigError,
  activeTraceId,
  createLogger,
  startTracing,
  tracingEnabled,
  tracingSettingsFromEnv,
  withSpan,
  type Tracing,
} from '../src/index.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { lines, stream };
}

async function until(what: string, probe: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('tracingSettingsFromEnv', () => {
  it('should leave traces off when no OTEL_ variable asks for them', () => {
    expect(tracingSettingsFromEnv({}, 'api')).toBeUndefined();
    expect(tracingSettingsFromEnv({ OTEL_SERVICE_NAME: 'x' }, 'api')).toBeUndefined();
  });

  it('should leave traces off for OTEL_TRACES_EXPORTER=none and OTEL_SDK_DISABLED=true, endpoint or not', () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };
    expect(tracingSettingsFromEnv({ ...endpoint, OTEL_TRACES_EXPORTER: 'none' }, 'api')).toBeUndefined();
    expect(
      tracingSettingsFromEnv({ ...endpoint, OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }, 'api'),
    ).toBeUndefined();
  });

  it('should export OTLP to <endpoint>/v1/traces when only an endpoint is set, as warden-<service>', () => {
    expect(tracingSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }, 'api')).toEqual({
      exporter: 'otlp',
      serviceName: 'warden-api',
      url: 'http://collector:4318/v1/traces',
    });
  });

  it('should take a traces endpoint as it is, and OTEL_SERVICE_NAME over the default name', () => {
    expect(
      tracingSettingsFromEnv(
        {
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://ignored:4318',
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://tempo.example/otlp/v1/traces',
          OTEL_SERVICE_NAME: 'warden-api-eu',
        },
        'api',
      ),
    ).toEqual({
      exporter: 'otlp',
      serviceName: 'warden-api-eu',
      url: 'https://tempo.example/otlp/v1/traces',
    });
  });

  it('should turn traces on with OTEL_TRACES_EXPORTER alone (the exporter default endpoint, or the console)', () => {
    expect(tracingSettingsFromEnv({ OTEL_TRACES_EXPORTER: 'otlp' }, 'scheduler')).toEqual({
      exporter: 'otlp',
      serviceName: 'warden-scheduler',
    });
    expect(tracingSettingsFromEnv({ OTEL_TRACES_EXPORTER: 'console' }, 'scheduler')?.exporter).toBe(
      'console',
    );
  });

  it('should refuse an exporter, a protocol or an endpoint it cannot use, naming the variable', () => {
    expect(() => tracingSettingsFromEnv({ OTEL_TRACES_EXPORTER: 'zipkin' }, 'api')).toThrow(
      new TracingConfigError('OTEL_TRACES_EXPORTER: "zipkin" is not supported (use otlp, console or none)'),
    );
    expect(() =>
      tracingSettingsFromEnv({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, 'api'),
    ).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" is not supported/);
    expect(() => tracingSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, 'api')).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318\/v1\/traces" is not an http\(s\) URL/,
    );
  });
});

describe('with tracing off', () => {
  it('should start nothing, run a span body as it is, and add no trace fields to log lines', async () => {
    expect(await startTracing({ service: 'api', env: {} })).toBeUndefined();
    expect(tracingEnabled()).toBe(false);
    const { lines, stream } = capture();
    const logger = createLogger({ service: 'api', destination: stream });
    const result = await withSpan('work', {}, async (span) => {
      logger.info({ action: 'inside' }, 'inside a span');
      return { recording: span.isRecording(), traceId: activeTraceId() };
    });
    expect(result).toEqual({ recording: false, traceId: undefined });
    await until('the log line', () => lines.length > 0);
    expect(lines[0]).not.toHaveProperty('trace_id');
    expect(lines[0]).not.toHaveProperty('span_id');
  });
});

describe('when the collector fails every export', () => {
  let tracing: Tracing | undefined;
  const scheduleDelay = process.env.OTEL_BSP_SCHEDULE_DELAY;
  afterEach(async () => {
    await tracing?.shutdown(500);
    if (scheduleDelay === undefined) delete process.env.OTEL_BSP_SCHEDULE_DELAY;
    else process.env.OTEL_BSP_SCHEDULE_DELAY = scheduleDelay;
  });

  it('should still run every span body, stamp log lines with the trace, and warn once', async () => {
    let exports = 0;
    const collector = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        exports += 1;
        res.writeHead(500).end();
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    // The batch processor reads its delay from the environment: export every 20 ms instead of every 5 s.
    process.env.OTEL_BSP_SCHEDULE_DELAY = '20';
    const { lines, stream } = capture();
    const logger = createLogger({ service: 'api', destination: stream });
    tracing = await startTracing({
      service: 'api',
      logger,
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
      },
    });
    expect(tracingEnabled()).toBe(true);
    try {
      for (let round = 1; round <= 3; round++) {
        const answer = await withSpan(`request-${round}`, {}, async () => {
          logger.info({ action: 'inside', round }, 'inside a span');
          return activeTraceId();
        });
        expect(answer).toMatch(/^[0-9a-f]{32}$/);
        await until(`export ${round}`, () => exports >= round);
      }
      await until('the warning', () => lines.some((line) => line.module === 'tracing'));
      const inside = lines.filter((line) => line.action === 'inside');
      expect(inside).toHaveLength(3);
      for (const line of inside) {
        expect(line.trace_id).toMatch(/^[0-9a-f]{32}$/);
        expect(line.span_id).toMatch(/^[0-9a-f]{16}$/);
      }
      expect(lines.filter((line) => line.module === 'tracing')).toEqual([
        expect.objectContaining({ level: 'warn', action: 'export', status: 'error' }),
      ]);
    } finally {
      collector.closeAllConnections();
      await new Promise((resolve) => collector.close(resolve));
    }
  });
});
