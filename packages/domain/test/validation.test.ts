import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ConfigError,
  EventBatchSchema,
  SupervisorPolicyFileSchema,
  ValidationError,
  parseConfig,
  parseOrThrow,
  parsePolicyYaml,
  toTaskEvent,
  decodeCursor,
  encodeCursor,
  hasScope,
} from '../src/index.js';

describe('parseOrThrow', () => {
  it('should name the dotted path of every failing field', () => {
    const body = {
      events: [
        { event_id: 'a', task_id: 't', event_type: 'TASK_CREATED' },
        { event_id: 7, task_id: 't', event_type: 'x' },
      ],
    };
    try {
      parseOrThrow(EventBatchSchema, body, 'request body');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      const paths = (error as ValidationError).details.map((d) => d.path);
      expect(paths).toEqual(['events.1.event_id', 'events.1.event_type']);
      expect((error as Error).message).toContain('invalid request body: events.1.event_id');
    }
  });
});

describe('parseConfig', () => {
  it('should throw a ConfigError listing each bad variable', () => {
    const schema = z.object({ PORT: z.coerce.number().int().max(65535), DATABASE_URL: z.string().url() });
    expect(() =>
      parseConfig(schema, { PORT: '99999', DATABASE_URL: 'nope' }, 'api configuration'),
    ).toThrowError(/invalid api configuration: PORT: .*; DATABASE_URL: /);
    expect(() => parseConfig(schema, {}, 'x')).toThrowError(ConfigError);
  });
});

describe('parsePolicyYaml', () => {
  it('should give every documented default for an empty file', () => {
    const policy = parsePolicyYaml('', SupervisorPolicyFileSchema, 'supervisor.yaml');
    expect(policy.thresholds).toEqual({
      error_rate: 0.3,
      resource_usage: 0.8,
      security_score: 50,
      max_retries: 3,
      policy_timeout_ms: 200,
    });
    expect(policy.enforcement.default).toBe('enforce');
    expect(policy.redlines.forbidden_commands.length).toBeGreaterThan(0);
  });

  it('should name the field path of a value out of range', () => {
    expect(() =>
      parsePolicyYaml('thresholds:\n  error_rate: 7\n', SupervisorPolicyFileSchema, 'supervisor.yaml'),
    ).toThrowError(/supervisor\.yaml: thresholds\.error_rate: /);
  });

  it('should name an unknown key instead of ignoring it', () => {
    expect(() =>
      parsePolicyYaml('thresholds:\n  eror_rate: 0.2\n', SupervisorPolicyFileSchema, 'p.yaml'),
    ).toThrowError(/eror_rate/);
  });

  it('should name the line of a YAML syntax error', () => {
    expect(() =>
      parsePolicyYaml('thresholds:\n  error_rate: [0.3\n', SupervisorPolicyFileSchema, 'p.yaml'),
    ).toThrowError(/p\.yaml: not valid YAML: line \d+/);
  });

  it('should reject a redline regex that is not a regular expression', () => {
    expect(() =>
      parsePolicyYaml(
        "redlines:\n  forbidden_commands:\n    - description: d\n      args_match: ['(unclosed']\n",
        SupervisorPolicyFileSchema,
        'p.yaml',
      ),
    ).toThrowError(/redlines\.forbidden_commands\.0\.args_match\.0: not a valid RE2 regular expression/);
  });

  it('should reject a regex pattern rule of the old format, naming the field', () => {
    expect(() =>
      parsePolicyYaml(
        "redlines:\n  forbidden_commands:\n    - pattern: 'sudo'\n      description: d\n",
        SupervisorPolicyFileSchema,
        'p.yaml',
      ),
    ).toThrowError(
      /redlines\.forbidden_commands\.0\.pattern: regex rules over the joined command line are no longer read/,
    );
  });
});

describe('toTaskEvent', () => {
  it('should stamp the tenant, the source and the receipt time when ts is missing', () => {
    const at = new Date('2026-01-02T03:04:05.000Z');
    const event = toTaskEvent(
      { event_id: 'e', task_id: 't', event_type: 'TASK_CREATED', payload: {} },
      'acme',
      'http',
      at,
    );
    expect(event).toEqual({
      event_id: 'e',
      tenant_id: 'acme',
      task_id: 't',
      event_type: 'TASK_CREATED',
      ts: at.toISOString(),
      source: 'http',
      payload: {},
    });
  });
});

describe('cursors', () => {
  it('should round-trip and reject a forged cursor', () => {
    const schema = z.object({ after: z.string() });
    expect(decodeCursor(encodeCursor({ after: '42' }), schema)).toEqual({ after: '42' });
    expect(decodeCursor('not-base64-json', schema)).toBeUndefined();
    expect(decodeCursor(encodeCursor({ before: 1 }), schema)).toBeUndefined();
  });
});

describe('hasScope', () => {
  it('should let admin stand for every scope and nothing else grant another', () => {
    expect(hasScope(['admin'], 'changesets:approve')).toBe(true);
    expect(hasScope(['tasks:read'], 'tasks:approve')).toBe(false);
  });
});
