import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, redactSecrets } from '../src/index.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      callback();
    },
  });
  return { lines, stream };
}

describe('createLogger', () => {
  it('should write one JSON line with ts, level, service and msg', () => {
    const { lines, stream } = capture();
    createLogger({ service: 'api', destination: stream })
      .child({ module: 'http' })
      .info({ action: 'request', latency_ms: 3 }, 'done');
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({
      level: 'info',
      service: 'api',
      module: 'http',
      action: 'request',
      latency_ms: 3,
      msg: 'done',
    });
    expect(new Date(entry.ts).toISOString()).toBe(entry.ts);
  });

  it('should redact secret-named fields at any depth and API keys inside messages', () => {
    const { lines, stream } = capture();
    createLogger({ service: 'api', destination: stream }).info(
      {
        headers: { authorization: 'Bearer wdn_abcdefgh' },
        payload: { nested: { db_password: 'hunter2', api_key: 'k', fine: 'visible' } },
      },
      'called with wdn_abcdefghijkl',
    );
    const line = lines[0]!;
    expect(line).not.toContain('hunter2');
    expect(line).not.toContain('wdn_abcdefgh');
    expect(JSON.parse(line).payload.nested.fine).toBe('visible');
  });
});

describe('redactSecrets', () => {
  it('should leave arrays of plain values and errors intact', () => {
    const error = new Error('boom');
    expect(redactSecrets({ list: [1, 2], err: error })).toEqual({ list: [1, 2], err: error });
  });
});

describe('errors in log lines', () => {
  it('should mask the values a Postgres error quotes, and secret-shaped text in any error', () => {
    const { lines, stream } = capture();
    const pgError = Object.assign(new Error('invalid input syntax for type json: "sk-live-123"'), {
      code: '22P02',
      severity: 'ERROR',
      detail: 'Key (api_token)=(tok_very_secret) already exists.',
      where: 'JSON data, line 1: {"password": "hunter2"',
      table: 'tasks',
    });
    const plain = new Error('upstream said password=hunter3 for wdn_abcdefghijkl');
    const logger = createLogger({ service: 'api', destination: stream });
    logger.error({ err: pgError }, 'insert failed');
    logger.error({ err: plain, nested: { cause: { secret: 'x1' } } }, 'call failed');
    const [first, second] = lines.map((line) => JSON.parse(line));
    for (const secret of ['sk-live-123', 'tok_very_secret', 'hunter2'])
      expect(JSON.stringify(first)).not.toContain(secret);
    expect(first.err).toMatchObject({ code: '22P02', table: 'tasks' });
    expect(first.err.detail).toMatch(/Key \(api_token\)=\(\[redacted\]\)/);
    for (const secret of ['hunter3', 'abcdefghijkl', 'x1'])
      expect(JSON.stringify(second)).not.toContain(secret);
    expect(second.err.message).toMatch(/^upstream said password=\[redacted\]/);
  });

  it('should redact an error inside an error (cause) too', () => {
    const { lines, stream } = capture();
    const inner = Object.assign(new Error('bad value "sk-inner"'), { code: '22P02', severity: 'ERROR' });
    createLogger({ service: 'api', destination: stream }).error(
      { err: new Error('outer', { cause: inner }) },
      'x',
    );
    expect(lines[0]).not.toContain('sk-inner');
  });
});
