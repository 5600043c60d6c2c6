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
